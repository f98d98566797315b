"""EDGAR's current-filings Atom feed, recorded and broken: one document per filing."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from ingest.edgar import EdgarAtomSource
from tests.edgar_helpers import (
    ALL_FORMS,
    TYPE4,
    common_fields_hold,
    parse,
    read,
)

ATOM_NS = "{http://www.w3.org/2005/Atom}"
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


def test_atom_all_forms_gives_one_document_per_filing(edgar_dir: Path) -> None:
    raw = read(edgar_dir, ALL_FORMS)
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


def test_atom_type4_feed_merges_insiders_under_their_issuer(edgar_dir: Path) -> None:
    docs, rejected = parse(EdgarAtomSource("t", "u"), read(edgar_dir, TYPE4))
    assert (len(docs), rejected) == (46, [])
    assert Counter(doc.meta["form_type"] for doc in docs) == {"4": 46}
    assert all(len(doc.meta["ciks"]) == 1 for doc in docs)
    roles = Counter(p["role"] for doc in docs for p in doc.meta["parties"])
    assert roles == {"Issuer": 46, "Reporting": 54}
    assert max(len(doc.meta["parties"]) for doc in docs) == 10


def test_atom_form4_fields(edgar_dir: Path) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u"), read(edgar_dir, ALL_FORMS))
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


def test_atom_8k_items_and_subject_before_filer(edgar_dir: Path) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u"), read(edgar_dir, ALL_FORMS))
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
def test_atom_form_filter(
    edgar_dir: Path, forms: tuple[str, ...], expected: dict[str, int]
) -> None:
    docs, _ = parse(EdgarAtomSource("t", "u", forms=forms), read(edgar_dir, ALL_FORMS))
    assert Counter(doc.meta["form_type"] for doc in docs) == expected


def test_atom_feed_cut_mid_way_keeps_complete_entries(edgar_dir: Path) -> None:
    raw = read(edgar_dir, ALL_FORMS)
    cut = raw.index(b"</entry>", len(raw) // 2) + len(b"</entry>")
    docs, rejected = parse(EdgarAtomSource("t", "u"), raw[: cut + 40])
    complete = len(atom_groups(raw[:cut] + b"</feed>"))
    assert len(docs) == complete and 30 < complete < 73
    assert [r.reason for r in rejected] == ["malformed_feed"]


def test_atom_entry_without_accession_is_rejected_alone(edgar_dir: Path) -> None:
    raw = read(edgar_dir, ALL_FORMS)
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
def test_atom_in_a_wide_encoding_parses_like_the_original(edgar_dir: Path, encoding: str) -> None:
    raw = read(edgar_dir, ALL_FORMS)
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
