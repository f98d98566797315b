"""Every EDGAR parser on input none of them should accept, and on random or mutated bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base import Source
from ingest.config import make_source
from ingest.edgar import EdgarAtomSource, EdgarIndexSource
from ingest.edgar_doc import EdgarDocSource
from ingest.edgar_submissions import EdgarSubmissionsSource
from tests.edgar_helpers import (
    ALL_FORMS,
    OVERFLOW,
    TYPE4,
    parse,
    read,
    sources,
)

HTML_PAGE = "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"


@pytest.mark.parametrize("kind", ["edgar-atom", "edgar-index", "edgar-doc", "edgar-submissions"])
def test_every_kind_is_built_from_sources_yaml_options(kind: str) -> None:
    source = make_source(kind, "t", "u", tickers=("NVDA",), forms=("8-K",), body_max_chars=99)
    assert (source.kind, source.name, source.url) == (kind, "t", "u")


# -- Every parser on what none of them should accept ---------------------------------------

NOT_FOR_ANY = {
    "edgar-atom": "not_a_feed",
    "edgar-index": "not_a_filing_index",
    "edgar-doc": "not_a_filing_document",
    "edgar-submissions": "malformed_json",
}


@pytest.mark.parametrize("source", sources(), ids=lambda s: s.kind)
def test_html_error_page_is_rejected_by_every_parser(shared_dir: Path, source: Source) -> None:
    docs, rejected = parse(source, (shared_dir / HTML_PAGE).read_bytes())
    assert (docs, [r.reason for r in rejected]) == ([], [NOT_FOR_ANY[source.kind]])
    assert "Page Not Available" in rejected[0].payload


@pytest.mark.parametrize("source", sources(), ids=lambda s: s.kind)
def test_empty_input_is_rejected_by_every_parser(source: Source) -> None:
    docs, rejected = parse(source, b"")
    assert (docs, [r.reason for r in rejected]) == ([], [NOT_FOR_ANY[source.kind]])


@pytest.mark.parametrize("source", sources(), ids=lambda s: s.kind)
def test_form_idx_file_is_rejected_by_every_parser(edgar_dir: Path, source: Source) -> None:
    expected = {**NOT_FOR_ANY, "edgar-atom": "malformed_feed"}
    docs, rejected = parse(source, read(edgar_dir, "badform.idx.txt"))
    assert (docs, [r.reason for r in rejected]) == ([], [expected[source.kind]])


# -- Properties: no input makes a parser raise -------------------------------------------

FUZZED = [
    (EdgarAtomSource("t", "u"), TYPE4),
    (EdgarAtomSource("t", "u"), ALL_FORMS),
    (EdgarIndexSource("t", "u"), "adbe_8k_0000796343-23-000044-index.html"),
    (EdgarIndexSource("t", "u"), "aapl_corresp_0000000000-24-005673-index.html"),
    (EdgarDocSource("t", "u"), "nvda_8k_nvda-20260302.htm"),
    (EdgarDocSource("t", "u"), "nvda_8k_0001045810-26-000024.txt"),
    (EdgarDocSource("t", "u"), "buckle_8k_ex99-1_press_release.html"),
    (EdgarSubmissionsSource("t", "u"), "submissions_CIK0001800903_small.json"),
    (EdgarSubmissionsSource("t", "u"), OVERFLOW),
]
SOURCES = sources()


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=2_000), which=st.sampled_from(SOURCES))
def test_random_bytes_never_raise(raw: bytes, which: Source) -> None:
    docs, rejected = parse(which, raw)
    assert docs or rejected


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.binary(min_size=1, max_size=8),
)


@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(FUZZED), mutations=st.lists(mutation, min_size=1, max_size=5))
def test_mutated_fixtures_never_raise(
    edgar_dir: Path, case: tuple[Source, str], mutations: list[tuple[str, float, bytes]]
) -> None:
    which, name = case
    raw = read(edgar_dir, name)
    for op, where, data in mutations:
        at = int(where * len(raw))
        if op == "flip":
            flipped = bytes(a ^ b for a, b in zip(raw[at : at + len(data)], data, strict=False))
            raw = raw[:at] + flipped + raw[at + len(flipped) :]
        elif op == "insert":
            raw = raw[:at] + data + raw[at:]
        else:
            raw = raw[:at]
    docs, rejected = parse(which, raw)
    assert docs or rejected
