"""EDGAR ingest on real recorded filings and on broken input: bytes in, filings and rejects out."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base import Source
from ingest.config import make_source
from ingest.edgar import EdgarAtomSource, EdgarIndexSource
from ingest.edgar_doc import EdgarDocSource
from ingest.edgar_submissions import EdgarSubmissionsSource
from ingest.sec import tag_spans
from ingest.text import clean_text
from streams.records import Document, Rejected, stable_id

EDGAR = "fixtures/edgar"
HTML_PAGE = "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
FETCHED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def parse(source: Source, raw: bytes) -> tuple[list[Document], list[Rejected]]:
    """Parse bytes; every item must be a Document or a Rejected."""
    out = list(source.parse(raw, FETCHED))
    docs = [item for item in out if isinstance(item, Document)]
    rejected = [item for item in out if isinstance(item, Rejected)]
    assert len(docs) + len(rejected) == len(out)
    return docs, rejected


@pytest.fixture(scope="module")
def edgar(shared_dir: Path) -> Path:
    return shared_dir / EDGAR


def read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


def common_fields_hold(doc: Document, kind: str) -> None:
    """Check what every filing document carries, whatever its source."""
    assert doc.kind == "filing"
    assert doc.published_at.utcoffset() is not None
    assert doc.doc_id == stable_id("sec", kind, doc.meta["accession"])
    for key in ("form_type", "items", "cik", "ciks", "company", "accession", "filed_at"):
        assert key in doc.meta


# -- Atom: the current-filings feed, one entry per party of a filing -----------------------

ALL_FORMS = "getcurrent_all_forms_start0.atom.xml"
TYPE4 = "getcurrent_type4_start0.atom.xml"
# Counted by reading the feed: 100 entries, 73 accession numbers, form per accession.
ALL_FORMS_PER_FORM = {
    "4": 18,
    "424B2": 18,
    "D": 8,
    "13F-HR": 6,
    "497K": 5,
    "D/A": 3,
    "497": 3,
    "25-NSE": 2,
    "3": 2,
    "5": 2,
    "S-1/A": 1,
    "8-K": 1,
    "SC TO-I": 1,
    "424B3": 1,
    "FWP": 1,
    "SCHEDULE 13D/A": 1,
}


def atom_groups(raw: bytes) -> dict[str, list[str]]:
    """Group the feed's entry titles by entry id, read with plain defusedxml."""
    groups: dict[str, list[str]] = {}
    for entry in SafeET.fromstring(raw).iter(f"{ATOM_NS}entry"):
        groups.setdefault(entry.findtext(f"{ATOM_NS}id") or "", []).append(
            entry.findtext(f"{ATOM_NS}title") or ""
        )
    return groups


def test_atom_all_forms_gives_one_document_per_filing(edgar: Path) -> None:
    raw = read(edgar, ALL_FORMS)
    groups = atom_groups(raw)
    docs, rejected = parse(EdgarAtomSource("t", "u"), raw)
    assert (sum(map(len, groups.values())), len(groups), len(docs), rejected) == (100, 73, 73, [])
    assert Counter(doc.meta["form_type"] for doc in docs) == ALL_FORMS_PER_FORM
    assert [len(doc.meta["parties"]) for doc in docs] == [len(g) for g in groups.values()]
    for doc in docs:
        common_fields_hold(doc, "edgar-atom")
        assert doc.meta["filed_at"] == "2026-01-12"
        assert "Reporting" not in {
            p["role"] for p in doc.meta["parties"] if p["cik"] in doc.meta["ciks"]
        }


def test_atom_type4_feed_merges_insiders_under_their_issuer(edgar: Path) -> None:
    docs, rejected = parse(EdgarAtomSource("t", "u"), read(edgar, TYPE4))
    assert (len(docs), rejected) == (46, [])
    assert Counter(doc.meta["form_type"] for doc in docs) == {"4": 46}
    assert all(len(doc.meta["ciks"]) == 1 for doc in docs)
    roles = Counter(p["role"] for doc in docs for p in doc.meta["parties"])
    assert roles == {"Issuer": 46, "Reporting": 54}
    assert max(len(doc.meta["parties"]) for doc in docs) == 10


def test_atom_form4_fields(edgar: Path) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u"), read(edgar, ALL_FORMS))
    doc = next(d for d in docs if d.meta["accession"] == "0000080661-26-000032")
    assert doc.meta["parties"] == [
        {"cik": 1071287, "name": "DAVIS CHARLES A", "role": "Reporting"},
        {"cik": 80661, "name": "PROGRESSIVE CORP/OH/", "role": "Issuer"},
    ]
    assert (doc.meta["cik"], doc.meta["ciks"], doc.meta["company"]) == (
        80661,
        [80661],
        "PROGRESSIVE CORP/OH/",
    )
    # <updated>2026-01-12T11:26:36-05:00</updated>
    assert doc.published_at == datetime(2026, 1, 12, 16, 26, 36, tzinfo=UTC)
    assert doc.title == "PROGRESSIVE CORP/OH/ 4: DAVIS CHARLES A (Reporting)"
    assert doc.url.endswith("/data/80661/000008066126000032/0000080661-26-000032-index.htm")
    assert doc.tickers == ()


def test_atom_8k_items_and_subject_before_filer(edgar: Path) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u"), read(edgar, ALL_FORMS))
    by_form = {doc.meta["form_type"]: doc for doc in docs}
    assert by_form["8-K"].meta["items"] == ["7.01", "9.01"]
    assert by_form["8-K"].title == "Biohaven Ltd. 8-K: Item 7.01 Regulation FD Disclosure"
    # The 13D/A is about Templeton Dragon; the pension fund that filed it comes second.
    assert by_form["SCHEDULE 13D/A"].meta["ciks"] == [919893, 1007280]
    form_d = next(d for d in docs if d.meta["accession"] == "0000950103-26-000356")
    assert form_d.meta["items"] == ["3C", "3C.7"]


@pytest.mark.parametrize(
    ("forms", "expected"),
    [(("8-K",), {"8-K": 1}), (("D",), {"D": 8, "D/A": 3}), (("4", "5"), {"4": 18, "5": 2})],
)
def test_atom_form_filter(edgar: Path, forms: tuple[str, ...], expected: dict[str, int]) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u", forms=forms), read(edgar, ALL_FORMS))
    assert Counter(doc.meta["form_type"] for doc in docs) == expected


def test_atom_feed_cut_mid_way_keeps_complete_entries(edgar: Path) -> None:
    raw = read(edgar, ALL_FORMS)
    cut = raw.index(b"</entry>", len(raw) // 2) + len(b"</entry>")
    docs, rejected = parse(EdgarAtomSource("t", "u"), raw[: cut + 40])
    complete = len(atom_groups(raw[:cut] + b"</feed>"))
    assert len(docs) == complete and 30 < complete < 73
    assert [r.reason for r in rejected] == ["malformed_feed"]


def test_atom_entry_without_accession_is_rejected_alone(edgar: Path) -> None:
    raw = read(edgar, ALL_FORMS)
    without_id = re.sub(rb"<id>urn:tag:sec.gov[^<]+</id>", b"", raw, count=1)
    # The summary's "AccNo:" stands in for a missing id; without either the entry is lost.
    assert len(parse(EdgarAtomSource("t", "u"), without_id)[0]) == 73
    stripped = re.sub(rb"<summary.*?</summary>", b"", without_id, count=1, flags=re.DOTALL)
    docs, rejected = parse(EdgarAtomSource("t", "u"), stripped)
    assert len(docs) == 72
    assert [(r.reason, r.detail) for r in rejected] == [
        ("missing_field", "entry 0: no accession number in id or summary")
    ]


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&c;</title></feed>'
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&x;</title></feed>'
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_a_feed"),
        (b"<foo><bar/></foo>", "not_a_feed"),
        (BOMB, "xml_bomb"),
        (XXE, "unsafe_xml"),
        (b'{"items": []}', "malformed_feed"),
        (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><ent', "malformed_feed"),
    ],
    ids=["empty", "other-xml", "bomb", "xxe", "json", "truncated"],
)
def test_atom_bad_input_gives_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = parse(EdgarAtomSource("t", "u"), raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])
    assert rejected[0].source == "t"


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-be", "utf-16", "utf-16-le"])
def test_atom_in_a_wide_encoding_parses_like_the_original(edgar: Path, encoding: str) -> None:
    raw = read(edgar, ALL_FORMS)
    declared = f'encoding="{encoding[:6].upper()}"'
    text = raw.decode("latin-1").replace('encoding="ISO-8859-1"', declared, 1)
    assert declared in text
    docs, rejected = parse(EdgarAtomSource("t", "u"), text.encode(encoding))
    original = parse(EdgarAtomSource("t", "u"), raw)[0]
    assert ([d.doc_id for d in docs], rejected) == ([d.doc_id for d in original], [])
    assert [d.title for d in docs] == [d.title for d in original]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            BOMB.decode()
            .replace('version="1.0"', 'version="1.0" encoding="UTF-32"')
            .encode("utf-32"),
            "xml_bomb",
        ),
        (
            XXE.decode()
            .replace('version="1.0"', 'version="1.0" encoding="UTF-32"')
            .encode("utf-32"),
            "unsafe_xml",
        ),
        (BOMB.replace(b"<!DOCTYPE", b"<!--" + b"x" * 70_000 + b"--><!DOCTYPE"), "xml_bomb"),
        (XXE.replace(b"ENTITY x ", b"ENTITY x:y ").replace(b"&x;", b"&x:y;"), "unsafe_xml"),
    ],
    ids=["bomb-utf32", "xxe-utf32", "bomb-after-comment", "xxe-colon"],
)
def test_atom_entity_tricks_give_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = parse(EdgarAtomSource("t", "u"), raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])


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
    edgar: Path, make: type[Source], name: str, encoding: str
) -> None:
    raw = read(edgar, name)
    original = parse(make("t", "u"), raw)[0]
    docs, rejected = parse(make("t", "u"), raw.decode("utf-8").encode(encoding))
    assert rejected == [] and len(docs) == len(original) > 0
    assert [(d.doc_id, d.title, d.body) for d in docs] == [
        (d.doc_id, d.title, d.body) for d in original
    ]


def test_submissions_with_a_huge_integer_give_one_reject() -> None:
    raw = b'{"cik": ' + b"9" * 5_000 + b', "filings": {"recent": {"accessionNumber": []}}}'
    docs, rejected = parse(EdgarSubmissionsSource("t", "u"), raw)
    assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])
    assert "5000 digits" in rejected[0].detail


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
def test_index_page_fields(edgar: Path, case: tuple[Any, ...]) -> None:
    name, form, accession, cik, company, filed, accepted, period, items, primary = case
    docs, rejected = parse(EdgarIndexSource("t", "u"), read(edgar, name))
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


@pytest.mark.parametrize("kind", ["edgar-atom", "edgar-index", "edgar-doc", "edgar-submissions"])
def test_every_kind_is_built_from_sources_yaml_options(kind: str) -> None:
    source = make_source(kind, "t", "u", tickers=("NVDA",), forms=("8-K",), body_max_chars=99)
    assert (source.kind, source.name, source.url) == (kind, "t", "u")


def test_form_filter_on_index_page_and_document(edgar: Path) -> None:
    page, text = read(edgar, INDEX_PAGES[0][0]), read(edgar, "nvda_8k_0001045810-26-000024.txt")
    assert len(parse(EdgarIndexSource("t", "u", forms=["8-K"]), page)[0]) == 1
    assert parse(EdgarIndexSource("t", "u", forms=["10-K"]), page) == ([], [])
    assert parse(EdgarDocSource("t", "u", forms=["10-K"]), text) == ([], [])


def test_index_title_names_the_event(edgar: Path) -> None:
    doc = parse(EdgarIndexSource("t", "u"), read(edgar, INDEX_PAGES[0][0]))[0][0]
    assert doc.title.startswith("NVIDIA CORP 8-K: Item 5.02 Departure of Directors")
    assert doc.url.endswith("/1045810/000104581026000024/0001045810-26-000024-index.html")


# -- Primary documents ---------------------------------------------------------------------

ARCHIVE = "https://www.sec.gov/Archives/edgar/data"
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
def test_document_fields(edgar: Path, case: tuple[Any, ...]) -> None:
    name, url, form, company, cik, items = case
    docs, rejected = parse(EdgarDocSource("t", url), read(edgar, name))
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
def test_hidden_ix_header_stays_out_of_the_text(edgar: Path, name: str) -> None:
    raw = read(edgar, name)
    header = re.search(rb"<ix:header>.*?</ix:header>", raw, re.DOTALL)
    assert header is not None
    hidden = clean_text(header.group(0).decode())
    doc = parse(EdgarDocSource("t", "u"), raw)[0][0]
    assert hidden not in doc.body
    assert f"{doc.meta['cik']:010d}" in hidden and f"{doc.meta['cik']:010d}" not in doc.body
    assert "us-gaap:" not in doc.body and "dei:" not in doc.body


def test_full_submission_text_file(edgar: Path) -> None:
    doc = parse(EdgarDocSource("t", "u"), read(edgar, "nvda_8k_0001045810-26-000024.txt"))[0][0]
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


def test_each_representation_is_its_own_document(edgar: Path) -> None:
    index = parse(EdgarIndexSource("t", "u"), read(edgar, INDEX_PAGES[0][0]))[0][0]
    text = parse(EdgarDocSource("t", "u"), read(edgar, "nvda_8k_0001045810-26-000024.txt"))[0][0]
    url = DOCUMENTS[0][1]
    page = parse(EdgarDocSource("t", url), read(edgar, "nvda_8k_nvda-20260302.htm"))[0][0]
    assert index.meta["accession"] == text.meta["accession"] == page.meta["accession"]
    assert text.doc_id == page.doc_id != index.doc_id
    assert page.meta["published_missing"] is True and page.published_at == FETCHED


def test_legacy_8k_keeps_old_item_numbers(edgar: Path) -> None:
    doc = parse(EdgarDocSource("t", "u"), read(edgar, "legacy_8k_0001104659-03-004925.html"))[0][0]
    assert (doc.meta["items"], doc.meta["legacy_items"]) == (["9"], True)
    assert doc.title == "8-K: Item 9 Regulation FD Disclosure"
    assert doc.meta["id_derived"] is True


def test_exhibit_press_release(edgar: Path) -> None:
    source = EdgarDocSource("t", "u", tickers=["BKE"], body_max_chars=500)
    doc = parse(source, read(edgar, "buckle_8k_ex99-1_press_release.html"))[0][0]
    assert doc.meta["form_type"] == "EX-99.1"
    assert doc.title == "EX-99.1: THE BUCKLE, INC. REPORTS THIRD QUARTER NET INCOME"
    assert (doc.tickers, doc.meta["trading_symbols"]) == (("BKE",), ["BKE"])
    assert len(doc.body) == 500


# -- Submissions JSON ---------------------------------------------------------------------

MSFT = "submissions_CIK0000789019_MSFT.json"
OVERFLOW = "submissions_CIK0001009672-submissions-001.json"


def test_msft_submissions_one_document_per_recent_filing(edgar: Path) -> None:
    raw = read(edgar, MSFT)
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


def test_msft_8k_fields(edgar: Path) -> None:
    docs, _ = parse(EdgarSubmissionsSource("t", "u", forms=["8-K"]), read(edgar, MSFT))
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


def test_tsla_acceptance_time_is_utc(edgar: Path) -> None:
    docs, _ = parse(
        EdgarSubmissionsSource("t", "u"), read(edgar, "submissions_CIK0001318605_TSLA.json")
    )
    assert len(docs) == 1000
    assert Counter(doc.meta["form_type"] for doc in docs)["8-K"] == 126
    assert (docs[0].meta["form_type"], docs[0].meta["filed_at"]) == ("10-K", "2026-01-29")
    assert docs[0].published_at == datetime(2026, 1, 29, 1, 55, 3, tzinfo=UTC)


def test_small_filer_without_tickers(edgar: Path) -> None:
    docs, _ = parse(
        EdgarSubmissionsSource("t", "u"), read(edgar, "submissions_CIK0001800903_small.json")
    )
    assert [(d.meta["form_type"], d.meta["items"], d.tickers) for d in docs] == [
        ("D", ["06b", "3C", "3C.7"], ())
    ]
    assert docs[0].url == f"{ARCHIVE}/1800903/000180090320000001/xslFormDX01/primary_doc.xml"


def test_overflow_page_takes_its_cik_from_the_url(edgar: Path) -> None:
    url = "https://data.sec.gov/submissions/CIK0001009672-submissions-001.json"
    docs, rejected = parse(EdgarSubmissionsSource("t", url), read(edgar, OVERFLOW))
    assert (len(docs), rejected) == (205, [])
    assert Counter(doc.meta["form_type"] for doc in docs)["8-K"] == 12
    assert {(doc.meta["cik"], doc.meta["company"]) for doc in docs} == {(1009672, None)}
    legacy = [doc for doc in docs if doc.meta.get("legacy_items")]
    assert legacy and all(doc.meta["form_type"].startswith("8-K") for doc in legacy)
    _, rejected = parse(EdgarSubmissionsSource("t", "u"), read(edgar, OVERFLOW))
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


# -- Every parser on what none of them should accept ---------------------------------------

NOT_FOR_ANY = {
    "edgar-atom": "not_a_feed",
    "edgar-index": "not_a_filing_index",
    "edgar-doc": "not_a_filing_document",
    "edgar-submissions": "malformed_json",
}


def sources() -> list[Source]:
    return [
        EdgarAtomSource("t", "u"),
        EdgarIndexSource("t", "u"),
        EdgarDocSource("t", "u"),
        EdgarSubmissionsSource("t", "u"),
    ]


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
def test_form_idx_file_is_rejected_by_every_parser(edgar: Path, source: Source) -> None:
    expected = {**NOT_FOR_ANY, "edgar-atom": "malformed_feed"}
    docs, rejected = parse(source, read(edgar, "badform.idx.txt"))
    assert (docs, [r.reason for r in rejected]) == ([], [expected[source.kind]])


def test_truncated_index_page_and_document(edgar: Path) -> None:
    page = read(edgar, INDEX_PAGES[0][0])
    docs, rejected = parse(EdgarIndexSource("t", "u"), page[: page.index(b'id="secNum"')])
    assert (docs, [r.reason for r in rejected]) == ([], ["not_a_filing_index"])
    text = read(edgar, "nvda_8k_0001045810-26-000024.txt")
    docs, _ = parse(EdgarDocSource("t", "u"), text[: text.index(b"Item 9.01")])
    assert docs[0].meta["items"] == ["5.02"]
    assert docs[0].meta["accession"] == "0001045810-26-000024"


# -- Properties: no input makes a parser raise -------------------------------------------

FUZZED = [
    (EdgarAtomSource("t", "u"), TYPE4),
    (EdgarAtomSource("t", "u"), ALL_FORMS),
    (EdgarIndexSource("t", "u"), INDEX_PAGES[1][0]),
    (EdgarIndexSource("t", "u"), INDEX_PAGES[4][0]),
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
    edgar: Path, case: tuple[Source, str], mutations: list[tuple[str, float, bytes]]
) -> None:
    which, name = case
    raw = read(edgar, name)
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
