"""RSS and Atom ingest on real feeds and on broken input: bytes in, documents and rejects out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from ingest.text import is_symbol
from streams.records import stable_id
from tests.rss_helpers import parse, rss

HALTS = "fixtures/feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml"
EDGAR = "fixtures/edgar/getcurrent_all_forms_start0.atom.xml"
HTML_PAGE = "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"
SA_NS = "{https://seekingalpha.com/api/1.0}"
NDAQ_NS = "{http://www.nasdaqtrader.com/}"
ATOM_NS = "{http://www.w3.org/2005/Atom}"


# -- Seeking Alpha: a per-symbol news feed, several sa:symbol per item -------------------


def test_seekingalpha_gives_30_news_documents_and_no_rejects(sa_raw: bytes) -> None:
    docs, rejected = parse(sa_raw)
    assert (len(docs), rejected) == (30, [])
    assert {doc.kind for doc in docs} == {"news"}
    assert all("MSFT" in doc.tickers for doc in docs)
    assert all(doc.meta["author"] for doc in docs)


def test_seekingalpha_first_item_fields(sa_raw: bytes) -> None:
    first = parse(sa_raw)[0][0]
    assert first.doc_id == stable_id("id", "https://seekingalpha.com/Article:4117127")
    assert first.title == "Microsoft (MSFT) Q1 2018 Results - Earnings Call Transcript"
    assert first.tickers == ("MSFT",)
    # Thu, 26 Oct 2017 21:54:10 -0400
    assert first.published_at == datetime(2017, 10, 27, 1, 54, 10, tzinfo=UTC)
    assert first.published_at.utcoffset() is not None
    assert first.meta == {"author": "SA Transcripts"}


def test_seekingalpha_keeps_every_declared_symbol_in_order(sa_raw: bytes) -> None:
    items = SafeET.fromstring(sa_raw).iter("item")
    declared = [[s.text or "" for s in item.iter(f"{SA_NS}symbol")] for item in items]
    docs = parse(sa_raw)[0]
    # One item also lists "EYE-OLD", a retired symbol: not a ticker, so it is dropped.
    assert sum(symbols.count("EYE-OLD") for symbols in declared) == 1
    assert [doc.tickers for doc in docs] == [tuple(filter(is_symbol, d)) for d in declared]
    dreamers = next(doc for doc in docs if doc.title == "Tech companies to lobby for 'Dreamers'")
    assert dreamers.tickers == ("GOOG", "GOOGL", "MSFT", "FB", "INTC", "UBER", "IBM")


def test_seekingalpha_ids_are_stable_and_distinct(sa_raw: bytes) -> None:
    once = [doc.doc_id for doc in parse(sa_raw)[0]]
    again = [doc.doc_id for doc in parse(sa_raw)[0]]
    assert once == again
    assert len(set(once)) == 30


# -- Nasdaq trade halts: no guid, no link, an HTML table in the description --------------


def test_nasdaq_halts_ids_come_from_content(shared_dir: Path) -> None:
    raw = (shared_dir / HALTS).read_bytes()
    items = list(SafeET.fromstring(raw).iter("item"))
    docs, rejected = parse(raw)
    assert (len(docs), rejected) == (14, [])
    for doc, item in zip(docs, items, strict=True):
        assert doc.meta["id_derived"] is True
        assert doc.tickers == (item.findtext(f"{NDAQ_NS}IssueSymbol"),)
        assert "<" not in doc.body
        assert item.findtext(f"{NDAQ_NS}HaltDate") in doc.body.splitlines()
    assert [doc.doc_id for doc in docs] == [doc.doc_id for doc in parse(raw)[0]]
    assert len({doc.doc_id for doc in docs}) == 14


# -- EDGAR current filings: an Atom feed --------------------------------------------------


def test_edgar_atom_feed_gives_one_document_per_entry(shared_dir: Path) -> None:
    raw = (shared_dir / EDGAR).read_bytes()
    entries = list(SafeET.fromstring(raw).iter(f"{ATOM_NS}entry"))
    docs, rejected = parse(raw)
    assert (len(docs), rejected) == (len(entries), [])
    assert len(docs) == 100
    assert not any(doc.meta.get("published_missing") for doc in docs)
    # <updated>2026-01-12T11:27:39-05:00</updated>
    assert docs[0].published_at == datetime(2026, 1, 12, 16, 27, 39, tzinfo=UTC)
    assert docs[0].body == "Filed: 2026-01-12 AccNo: 0002074440-26-000002 Size: 14 KB"


# -- Bad input: exactly one Rejected, never an exception ---------------------------------

XHTML_ERROR_PAGE = (
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
    b"<head><title>Page Not Available</title></head><body><p>Try later</p></body></html>"
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_a_feed"),
        (XHTML_ERROR_PAGE, "not_a_feed"),
        (b"<foo><bar/></foo>", "not_a_feed"),
        (b"\x00\xff\xfe\x13garbage\x80\x81 bytes", "malformed_feed"),
        (b'{"items": []}', "malformed_feed"),
        (b'<?xml version="1.0"?><rss version="2.0"><chan', "malformed_feed"),
    ],
    ids=["empty", "xhtml-page", "other-xml", "garbage", "json", "truncated"],
)
def test_input_that_is_no_feed_gives_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = parse(raw)
    assert docs == []
    assert [(r.reason, r.stage, r.source) for r in rejected] == [(reason, "ingest", "test")]
    assert rejected[0].payload == raw.decode("utf-8", "replace")


def test_html_error_page_gives_one_reject(shared_dir: Path) -> None:
    docs, rejected = parse((shared_dir / HTML_PAGE).read_bytes())
    assert docs == []
    assert [r.reason for r in rejected] == ["malformed_feed"]
    assert "Page Not Available" in rejected[0].payload


def test_feed_truncated_before_its_items_gives_one_reject(sa_raw: bytes) -> None:
    docs, rejected = parse(sa_raw[: sa_raw.index(b"<item>") + 3])
    assert docs == []
    assert [r.reason for r in rejected] == ["malformed_feed"]


def test_feed_truncated_mid_way_keeps_its_complete_items(sa_raw: bytes) -> None:
    complete = parse(sa_raw)[0]
    cut = sa_raw.index(b"</item>", len(sa_raw) // 2) + len(b"</item>")
    docs = parse(sa_raw[:cut])[0]
    assert [doc.doc_id for doc in docs] == [doc.doc_id for doc in complete[: len(docs)]]
    assert 10 < len(docs) < 30


@pytest.mark.parametrize(
    "raw",
    [
        rss(""),
        '<rss version="2.0"><channel></channel></rss>',
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>',
    ],
    ids=["rss", "rss-bare", "atom"],
)
def test_valid_empty_feed_gives_nothing(raw: str) -> None:
    assert parse(raw.encode()) == ([], [])


def test_entry_with_neither_title_nor_body_is_rejected() -> None:
    raw = rss("<item><link>https://x.test/1</link></item><item><title>Kept</title></item>")
    docs, rejected = parse(raw.encode())
    assert [doc.title for doc in docs] == ["Kept"]
    assert [r.reason for r in rejected] == ["empty_entry"]
    assert rejected[0].detail.startswith("entry 0:")
    assert "https://x.test/1" in rejected[0].payload


def test_bad_date_falls_back_to_fetch_time() -> None:
    raw = rss("<item><guid>g1</guid><title>T</title><pubDate>not a date</pubDate></item>")
    (doc,), _ = parse(raw.encode())
    assert doc.published_at == doc.fetched_at
    assert doc.meta["published_missing"] is True


def test_long_body_is_cut_to_body_max_chars() -> None:
    raw = rss(f"<item><title>T</title><description>{'x' * 500}</description></item>")
    (doc,), _ = parse(raw.encode(), body_max_chars=100)
    assert doc.body == "x" * 100


def test_declared_latin1_is_decoded() -> None:
    declaration = '<?xml version="1.0" encoding="ISO-8859-1"?>'
    raw = rss("<item><title>Café</title></item>", declaration=declaration).encode("latin-1")
    assert b"Caf\xe9" in raw
    (doc,), rejected = parse(raw)
    assert (doc.title, rejected) == ("Café", [])


def test_undeclared_latin1_bytes_are_decoded() -> None:
    raw = rss("<item><title>Café</title></item>", declaration="").encode("latin-1")
    (doc,), rejected = parse(raw)
    assert (doc.title, rejected) == ("Café", [])


def test_unknown_declared_encoding_does_not_raise() -> None:
    declaration = '<?xml version="1.0" encoding="no-such-charset"?>'
    raw = rss("<item><title>Kept</title></item>", declaration=declaration)
    assert [doc.title for doc in parse(raw.encode())[0]] == ["Kept"]


def test_entity_expansion_is_not_followed() -> None:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {n} "{f"&{p};" * 10}">' for p, n in zip("abcdef", "bcdefg", strict=True)
    )
    raw = f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]>' + rss(
        "<item><guid>g</guid><title>&g;</title></item>", declaration=""
    )
    docs, rejected = parse(raw.encode())
    assert docs == [] and [r.reason for r in rejected] == ["xml_bomb"]


def test_external_entities_are_refused() -> None:
    decl = '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    raw = f'<?xml version="1.0"?>{decl}' + rss("<item><title>&x;</title></item>", declaration="")
    docs, rejected = parse(raw.encode())
    assert docs == [] and [r.reason for r in rejected] == ["unsafe_xml"]


def _entity_feed(declaration: str) -> str:
    return f'<?xml version="1.0"?><!DOCTYPE rss [{declaration}]>' + rss(
        "<item><guid>g</guid><title>&a:b;&a;</title></item>", declaration=""
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # The old byte check looked at the first 64 KiB only.
        (
            _entity_feed('<!ENTITY a "aaaa">').replace(
                "<!DOCTYPE", f"<!--{'x' * 70_000}--><!DOCTYPE"
            ),
            "xml_bomb",
        ),
        (
            _entity_feed('<!ENTITY a SYSTEM "file:///etc/passwd">').replace(
                "<!DOCTYPE", f"<!--{'x' * 70_000}--><!DOCTYPE"
            ),
            "unsafe_xml",
        ),
        (_entity_feed('<!ENTITY a:b "aaaa">'), "xml_bomb"),
        (_entity_feed('<!ENTITY a:b SYSTEM "file:///etc/passwd">'), "unsafe_xml"),
        (_entity_feed('<!ENTITY % a:b SYSTEM "http://x.test/p">'), "unsafe_xml"),
    ],
    ids=["after-70k-comment", "external-after-70k-comment", "colon", "colon-external", "param"],
)
def test_entity_declarations_are_refused_wherever_they_hide(raw: str, reason: str) -> None:
    docs, rejected = parse(raw.encode())
    assert docs == [] and [r.reason for r in rejected] == [reason]
    assert rejected[0].detail


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
@pytest.mark.parametrize(
    ("declaration", "reason"),
    [('<!ENTITY a "aaaa">', "xml_bomb"), ('<!ENTITY a SYSTEM "file:///etc/passwd">', "unsafe_xml")],
    ids=["internal", "external"],
)
def test_entity_declarations_in_wide_encodings_are_refused(
    encoding: str, declaration: str, reason: str
) -> None:
    raw = _entity_feed(declaration).replace("&a:b;", "")
    raw = raw.replace('version="1.0"?>', f'version="1.0" encoding="{encoding[:6]}"?>', 1)
    docs, rejected = parse(raw.encode(encoding))
    assert docs == [] and [r.reason for r in rejected] == [reason]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"])
def test_feed_in_another_unicode_encoding_parses_like_utf8(sa_raw: bytes, encoding: str) -> None:
    declaration = f'<?xml version="1.0" encoding="{encoding.removesuffix("-sig")}"?>'
    text = sa_raw.decode("utf-8").replace('<?xml version="1.0"?>', declaration, 1)
    assert declaration in text
    docs, rejected = parse(text.encode(encoding))
    assert ([d.doc_id for d in docs], rejected) == ([d.doc_id for d in parse(sa_raw)[0]], [])
    assert docs[0].tickers == parse(sa_raw)[0][0].tickers


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_wide_feed_cut_off_mid_item_keeps_its_complete_items(sa_raw: bytes, encoding: str) -> None:
    half = sa_raw[: len(sa_raw) // 2].decode("utf-8", "ignore")
    docs, rejected = parse(half.encode(encoding))
    # The same as the UTF-8 feed cut at the same place: 13 items whole, one cut off.
    assert len(docs) == 13
    assert [r.reason for r in rejected] == ["truncated_entry"]
