"""EDGAR index pages and primary documents on real filings and on broken input."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base import Source
from ingest.edgar import EdgarIndexSource
from ingest.edgar_doc import EdgarDocSource
from ingest.edgar_submissions import EdgarSubmissionsSource
from ingest.sec import tag_spans
from ingest.text import clean_text
from tests.edgar_helpers import (
    ARCHIVE,
    FETCHED,
    common_fields_hold,
    parse,
    read,
)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (EdgarIndexSource, "nvda_8k_0001045810-26-000024-index.html"),
        (EdgarDocSource, "nvda_8k_0001045810-26-000024.txt"),
        (EdgarSubmissionsSource, "submissions_CIK0000789019_MSFT.json"),
    ],
    ids=["index", "doc", "submissions"],
)
@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-16-be"])
def test_pages_in_a_wide_encoding_parse_like_the_original(
    edgar_dir: Path, make: type[Source], name: str, encoding: str
) -> None:
    raw = read(edgar_dir, name)
    original = parse(make("t", "u"), raw)[0]
    docs, rejected = parse(make("t", "u"), raw.decode("utf-8").encode(encoding))
    assert rejected == [] and len(docs) == len(original) > 0
    assert [(d.doc_id, d.title, d.body) for d in docs] == [
        (d.doc_id, d.title, d.body) for d in original
    ]


# -- Index pages --------------------------------------------------------------------------

INDEX_PAGES = [
    # file, form, accession, cik, company, filed, accepted (UTC), period, items, primary
    (
        "nvda_8k_0001045810-26-000024-index.html",
        "8-K",
        "0001045810-26-000024",
        1045810,
        "NVIDIA CORP",
        "2026-03-06",
        datetime(2026, 3, 6, 21, 11, 25, tzinfo=UTC),
        "2026-03-02",
        ["5.02", "9.01"],
        "/1045810/000104581026000024/nvda-20260302.htm",
    ),
    (
        "adbe_8k_0000796343-23-000044-index.html",
        "8-K",
        "0000796343-23-000044",
        796343,
        "ADOBE INC.",
        "2023-03-15",
        datetime(2023, 3, 15, 20, 6, 36, tzinfo=UTC),
        "2023-03-15",
        ["2.02", "9.01"],
        "/796343/000079634323000044/adbe-20230315.htm",
    ),
    (
        "blk_8k_0001193125-23-048785-index.html",
        "8-K",
        "0001193125-23-048785",
        1364742,
        "BlackRock Inc.",
        "2023-02-24",
        datetime(2023, 2, 24, 21, 22, 4, tzinfo=UTC),
        "2023-02-24",
        ["5.02"],
        "/1364742/000119312523048785/d435686d8k.htm",
    ),
    (
        "jwn_8k_0000072333-23-000015-index.html",
        "8-K",
        "0000072333-23-000015",
        72333,
        "NORDSTROM INC",
        "2023-03-06",
        datetime(2023, 3, 6, 22, 29, 21, tzinfo=UTC),
        "2023-03-01",
        ["5.02", "9.01"],
        "/72333/000007233323000015/jwn-20230301.htm",
    ),
    (
        "aapl_corresp_0000000000-24-005673-index.html",
        "UPLOAD",
        "0000000000-24-005673",
        320193,
        "Apple Inc.",
        "2024-05-16",
        datetime(2024, 5, 16, 19, 36, 10, tzinfo=UTC),
        None,
        [],
        "/320193/000000000024005673/filename1.pdf",
    ),
]


@pytest.mark.parametrize("case", INDEX_PAGES, ids=[c[0].split("_")[0] for c in INDEX_PAGES])
def test_index_page_fields(edgar_dir: Path, case: tuple[Any, ...]) -> None:
    name, form, accession, cik, company, filed, accepted, period, items, primary = case
    docs, rejected = parse(EdgarIndexSource("t", "u"), read(edgar_dir, name))
    assert (len(docs), rejected) == (1, [])
    doc = docs[0]
    common_fields_hold(doc, "edgar-index")
    meta = doc.meta
    assert (meta["form_type"], meta["accession"], meta["cik"], meta["ciks"]) == (
        form,
        accession,
        cik,
        [cik],
    )
    assert (meta["company"], meta["filed_at"], meta["period_of_report"]) == (company, filed, period)
    assert (doc.published_at, meta["items"]) == (accepted, items)
    assert meta["primary_document"] == f"https://www.sec.gov/Archives/edgar/data{primary}"
    assert doc.title.startswith(f"{company} {form}")


def test_form_filter_on_index_page_and_document(edgar_dir: Path) -> None:
    page, text = (
        read(edgar_dir, INDEX_PAGES[0][0]),
        read(edgar_dir, "nvda_8k_0001045810-26-000024.txt"),
    )
    assert len(parse(EdgarIndexSource("t", "u", forms=["8-K"]), page)[0]) == 1
    assert parse(EdgarIndexSource("t", "u", forms=["10-K"]), page) == ([], [])
    assert parse(EdgarDocSource("t", "u", forms=["10-K"]), text) == ([], [])


def test_index_title_names_the_event(edgar_dir: Path) -> None:
    doc = parse(EdgarIndexSource("t", "u"), read(edgar_dir, INDEX_PAGES[0][0]))[0][0]
    assert doc.title.startswith("NVIDIA CORP 8-K: Item 5.02 Departure of Directors")
    assert doc.url.endswith("/1045810/000104581026000024/0001045810-26-000024-index.html")


# -- Primary documents ---------------------------------------------------------------------


DOCUMENTS = [
    # file, url, form, company, cik, items
    (
        "nvda_8k_nvda-20260302.htm",
        f"{ARCHIVE}/1045810/000104581026000024/nvda-20260302.htm",
        "8-K",
        "NVIDIA CORP",
        1045810,
        ["5.02", "9.01"],
    ),
    ("adbe_8k_adbe-20230315.htm", "u", "8-K", "ADOBE INC.", 796343, ["2.02", "9.01"]),
    ("blk_8k_d435686d8k.htm", "u", "8-K", "BlackRock Inc.", 1364742, ["5.02"]),
    ("jwn_8k_jwn-20230301.htm", "u", "8-K", "Nordstrom, Inc.", 72333, ["5.02", "9.01"]),
    ("oracle_8k.html", "u", "8-K", "ORACLE CORP", 1341439, ["5.07"]),
    ("1800flowers_8k.html", "u", "8-K", "1 800 FLOWERS COM INC", 1084869, ["5.07"]),
    ("nvda_8k_0001045810-26-000024.txt", "u", "8-K", "NVIDIA CORP", 1045810, ["5.02", "9.01"]),
    ("blk_8k_0001193125-23-048785.txt", "u", "8-K", "BlackRock Inc.", 1364742, ["5.02"]),
    ("legacy_8k_0001104659-03-004925.html", "u", "8-K", None, None, ["9"]),
]


@pytest.mark.parametrize("case", DOCUMENTS, ids=[c[0] for c in DOCUMENTS])
def test_document_fields(edgar_dir: Path, case: tuple[Any, ...]) -> None:
    name, url, form, company, cik, items = case
    docs, rejected = parse(EdgarDocSource("t", url), read(edgar_dir, name))
    assert (len(docs), rejected) == (1, [])
    meta = docs[0].meta
    assert (meta["form_type"], meta["company"], meta["cik"], meta["items"]) == (
        form,
        company,
        cik,
        items,
    )
    assert docs[0].body and "<" not in docs[0].body[:2_000]
    assert docs[0].tickers == ()


@pytest.mark.parametrize(
    "name",
    [
        "nvda_8k_nvda-20260302.htm",
        "adbe_8k_adbe-20230315.htm",
        "oracle_8k.html",
        "nvda_8k_0001045810-26-000024.txt",
    ],
)
def test_hidden_ix_header_stays_out_of_the_text(edgar_dir: Path, name: str) -> None:
    raw = read(edgar_dir, name)
    header = re.search(rb"<ix:header>.*?</ix:header>", raw, re.DOTALL)
    assert header is not None
    hidden = clean_text(header.group(0).decode())
    doc = parse(EdgarDocSource("t", "u"), raw)[0][0]
    assert hidden not in doc.body
    assert f"{doc.meta['cik']:010d}" in hidden and f"{doc.meta['cik']:010d}" not in doc.body
    assert "us-gaap:" not in doc.body and "dei:" not in doc.body


def test_full_submission_text_file(edgar_dir: Path) -> None:
    doc = parse(EdgarDocSource("t", "u"), read(edgar_dir, "nvda_8k_0001045810-26-000024.txt"))[0][0]
    common_fields_hold(doc, "edgar-doc")
    assert doc.meta["accession"] == "0001045810-26-000024"
    assert doc.meta["filed_at"] == "2026-03-06"
    # <ACCEPTANCE-DATETIME>20260306161125, New York time.
    assert doc.published_at == datetime(2026, 3, 6, 21, 11, 25, tzinfo=UTC)
    assert doc.title.startswith(
        "NVIDIA CORP 8-K: Item 5.02 Departure of Directors or Certain Officers"
    )
    assert doc.meta["filename"] == "nvda-20260302.htm"
    assert doc.meta["trading_symbols"] == ["NVDA"]
    assert doc.url == f"{ARCHIVE}/1045810/000104581026000024/0001045810-26-000024-index.html"


def test_each_representation_is_its_own_document(edgar_dir: Path) -> None:
    index = parse(EdgarIndexSource("t", "u"), read(edgar_dir, INDEX_PAGES[0][0]))[0][0]
    text = parse(EdgarDocSource("t", "u"), read(edgar_dir, "nvda_8k_0001045810-26-000024.txt"))[0][
        0
    ]
    url = DOCUMENTS[0][1]
    page = parse(EdgarDocSource("t", url), read(edgar_dir, "nvda_8k_nvda-20260302.htm"))[0][0]
    assert index.meta["accession"] == text.meta["accession"] == page.meta["accession"]
    assert text.doc_id == page.doc_id != index.doc_id
    assert page.meta["published_missing"] is True and page.published_at == FETCHED


def test_legacy_8k_keeps_old_item_numbers(edgar_dir: Path) -> None:
    doc = parse(EdgarDocSource("t", "u"), read(edgar_dir, "legacy_8k_0001104659-03-004925.html"))[
        0
    ][0]
    assert (doc.meta["items"], doc.meta["legacy_items"]) == (["9"], True)
    assert doc.title == "8-K: Item 9 Regulation FD Disclosure"
    assert doc.meta["id_derived"] is True


def test_exhibit_press_release(edgar_dir: Path) -> None:
    source = EdgarDocSource("t", "u", tickers=["BKE"], body_max_chars=500)
    doc = parse(source, read(edgar_dir, "buckle_8k_ex99-1_press_release.html"))[0][0]
    assert doc.meta["form_type"] == "EX-99.1"
    assert doc.title == "EX-99.1: THE BUCKLE, INC. REPORTS THIRD QUARTER NET INCOME"
    assert (doc.tickers, doc.meta["trading_symbols"]) == (("BKE",), ["BKE"])
    assert len(doc.body) == 500


def test_truncated_index_page_and_document(edgar_dir: Path) -> None:
    page = read(edgar_dir, INDEX_PAGES[0][0])
    docs, rejected = parse(EdgarIndexSource("t", "u"), page[: page.index(b'id="secNum"')])
    assert (docs, [r.reason for r in rejected]) == ([], ["not_a_filing_index"])
    text = read(edgar_dir, "nvda_8k_0001045810-26-000024.txt")
    docs, _ = parse(EdgarDocSource("t", "u"), text[: text.index(b"Item 9.01")])
    assert docs[0].meta["items"] == ["5.02"]
    assert docs[0].meta["accession"] == "0001045810-26-000024"


@pytest.mark.parametrize(
    ("make", "unclosed"),
    [
        (EdgarDocSource, '<ix:nonNumeric name="dei:DocumentType">'),
        (EdgarDocSource, "<ix:header>"),
        (EdgarIndexSource, '<div id="formName">'),
        (
            EdgarIndexSource,
            '<div id="formName">Form 8-K - x:</div><div id="secNum">0000320193-24-000001</div>'
            + '<span class="companyName">' * 10_000
            + '<div class="infoHead">',
        ),
    ],
    ids=["ix-fact", "ix-header", "form-name", "company-and-info"],
)
def test_a_page_of_unclosed_tags_parses_in_linear_time(make: type[Source], unclosed: str) -> None:
    # A lazy start(.*?)end regex took minutes on a megabyte of these (quadratic).
    raw = (unclosed * (300_000 // len(unclosed) + 1)).encode()
    started = time.monotonic()
    docs, rejected = parse(make("t", "u"), raw)
    assert len(docs) + len(rejected) == 1
    assert time.monotonic() - started < 10


SPAN_PARTS = ["<a x>", "<a>", "</a>", "</a >", "<b>", "text", "<", ">", "a", "\n"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SPAN_PARTS), max_size=40).map("".join))
def test_tag_spans_match_what_the_lazy_regex_matched(text: str) -> None:
    start, end = re.compile(r"<a\b[^>]*>"), re.compile(r"</a\s*>")
    spans = [
        text[opening.end() : closing.start()] for opening, closing in tag_spans(text, start, end)
    ]
    assert spans == re.findall(r"<a\b[^>]*>(.*?)</a\s*>", text, re.DOTALL)
