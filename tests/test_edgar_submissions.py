"""EDGAR submissions JSON on real recordings and on broken input: one document per filing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.edgar_submissions import EdgarSubmissionsSource
from tests.edgar_helpers import (
    ARCHIVE,
    OVERFLOW,
    common_fields_hold,
    parse,
    read,
)

MSFT = "submissions_CIK0000789019_MSFT.json"


def test_msft_submissions_one_document_per_recent_filing(edgar_dir: Path) -> None:
    raw = read(edgar_dir, MSFT)
    forms = json.loads(raw)["filings"]["recent"]["form"]
    docs, rejected = parse(EdgarSubmissionsSource("t", "u"), raw)
    assert (len(docs), rejected) == (1006, [])
    per_form = Counter(doc.meta["form_type"] for doc in docs)
    assert per_form == Counter(forms)
    assert [per_form[f] for f in ("4", "8-K", "8-K/A", "10-Q", "10-K", "144")] == [
        732,
        67,
        1,
        20,
        6,
        37,
    ]
    assert all(doc.tickers == ("MSFT",) and doc.meta["cik"] == 789019 for doc in docs)
    assert len({doc.doc_id for doc in docs}) == 1006


def test_msft_8k_fields(edgar_dir: Path) -> None:
    docs, _ = parse(EdgarSubmissionsSource("t", "u", forms=["8-K"]), read(edgar_dir, MSFT))
    assert Counter(doc.meta["form_type"] for doc in docs) == {"8-K": 67, "8-K/A": 1}
    doc = docs[0]
    common_fields_hold(doc, "edgar-submissions")
    assert doc.meta["items"] == ["2.02", "9.01"]
    assert doc.meta["accession"] == "0001193125-26-027198"
    assert doc.published_at == datetime(2026, 1, 28, 21, 4, 38, tzinfo=UTC)
    assert doc.url == f"{ARCHIVE}/789019/000119312526027198/msft-20260128.htm"
    assert (
        doc.title == "MICROSOFT CORP 8-K: Item 2.02 Results of Operations and Financial Condition"
    )
    assert Counter(",".join(d.meta["items"]) for d in docs)["2.02,9.01"] == 25


def test_tsla_acceptance_time_is_utc(edgar_dir: Path) -> None:
    docs, _ = parse(
        EdgarSubmissionsSource("t", "u"), read(edgar_dir, "submissions_CIK0001318605_TSLA.json")
    )
    assert len(docs) == 1000
    assert Counter(doc.meta["form_type"] for doc in docs)["8-K"] == 126
    assert (docs[0].meta["form_type"], docs[0].meta["filed_at"]) == ("10-K", "2026-01-29")
    assert docs[0].published_at == datetime(2026, 1, 29, 1, 55, 3, tzinfo=UTC)


def test_small_filer_without_tickers(edgar_dir: Path) -> None:
    docs, _ = parse(
        EdgarSubmissionsSource("t", "u"), read(edgar_dir, "submissions_CIK0001800903_small.json")
    )
    assert [(d.meta["form_type"], d.meta["items"], d.tickers) for d in docs] == [
        ("D", ["06b", "3C", "3C.7"], ())
    ]
    assert docs[0].url == f"{ARCHIVE}/1800903/000180090320000001/xslFormDX01/primary_doc.xml"


def test_overflow_page_takes_its_cik_from_the_url(edgar_dir: Path) -> None:
    url = "https://data.sec.gov/submissions/CIK0001009672-submissions-001.json"
    docs, rejected = parse(EdgarSubmissionsSource("t", url), read(edgar_dir, OVERFLOW))
    assert (len(docs), rejected) == (205, [])
    assert Counter(doc.meta["form_type"] for doc in docs)["8-K"] == 12
    assert {(doc.meta["cik"], doc.meta["company"]) for doc in docs} == {(1009672, None)}
    legacy = [doc for doc in docs if doc.meta.get("legacy_items")]
    assert legacy and all(doc.meta["form_type"].startswith("8-K") for doc in legacy)
    _, rejected = parse(EdgarSubmissionsSource("t", "u"), read(edgar_dir, OVERFLOW))
    assert [(r.reason, r.detail) for r in rejected] == [
        ("missing_field", "cik: not in the file nor in the source URL")
    ]


def test_bad_rows_are_rejected_and_good_rows_kept() -> None:
    recent = {
        "accessionNumber": ["0000000001-24-000001", "", "0000000001-24-000003"],
        "form": ["8-K", "8-K", None],
        "items": ["1.01", "", ""],
    }
    raw = json.dumps({"cik": "1", "name": "X", "filings": {"recent": recent}}).encode()
    docs, rejected = parse(EdgarSubmissionsSource("t", "u"), raw)
    assert [doc.meta["accession"] for doc in docs] == ["0000000001-24-000001"]
    assert docs[0].meta["published_missing"] is True
    assert [(r.reason, r.detail) for r in rejected] == [
        ("missing_field", "filings.recent.accessionNumber[1]"),
        ("missing_field", "filings.recent.form[2]"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "malformed_json"),
        (b'{"cik": "1", "filings": {"recent": {"accessionNumber": [', "malformed_json"),
        (b"[1, 2]", "not_a_submissions_file"),
        (b'{"filings": {"recent": {"form": ["4"]}}}', "not_a_submissions_file"),
        (b'{"cik": "1", "filings": {"recent": []}}', "not_a_submissions_file"),
    ],
    ids=["empty", "truncated", "list", "no-accessions", "recent-not-object"],
)
def test_submissions_bad_input_gives_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = parse(EdgarSubmissionsSource("t", "u"), raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])


def test_submissions_with_a_huge_integer_give_one_reject() -> None:
    raw = b'{"cik": ' + b"9" * 5_000 + b', "filings": {"recent": {"accessionNumber": []}}}'
    docs, rejected = parse(EdgarSubmissionsSource("t", "u"), raw)
    assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])
    assert "5000 digits" in rejected[0].detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
COLUMNS = ["accessionNumber", "form", "items", "acceptanceDateTime", "primaryDocument"]


@settings(max_examples=100, deadline=None)
@given(
    top=st.dictionaries(st.sampled_from(["cik", "name", "tickers"]), json_values),
    recent=st.dictionaries(
        st.sampled_from(COLUMNS),
        st.lists(json_values | st.just("0000320193-24-000001") | st.just("8-K"), max_size=4),
    ),
)
def test_submissions_of_any_shape_never_raise(top: dict[str, Any], recent: dict[str, Any]) -> None:
    raw = json.dumps({**top, "filings": {"recent": recent}}).encode()
    docs, rejected = parse(EdgarSubmissionsSource("t", "CIK0000320193.json"), raw)
    assert docs or rejected or not recent.get("accessionNumber")
