"""Every parser kind on generated hostile input: documents or reasoned rejects, never a traceback.

Inputs are recorded fixtures (read in place) and documents generated here, then re-encoded
(UTF-8/16/32 with and without a byte-order mark, latin-1, cp1252), given entity tricks
(internal and external entities, billion laughs, names with colons, declarations after a
70 KB comment), cut at random points, given 5,000-digit numbers, deep nesting, stray
fragments and random bytes, or grown to hundreds of kilobytes.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import KINDS, make_source
from ingest.text import decode
from streams.records import Document, Rejected

FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# A URL with a CIK and accession, so the EDGAR parsers get as far as they can.
URL = "https://www.sec.gov/Archives/edgar/data/320193/000032019324000001/doc.htm"
SEEDS: dict[str, tuple[str, ...]] = {
    "rss": (
        "feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml",
        "feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml",
    ),
    "edgar-atom": ("edgar/getcurrent_all_forms_start0.atom.xml",),
    "edgar-index": ("edgar/nvda_8k_0001045810-26-000024-index.html",),
    "edgar-doc": ("edgar/nvda_8k_nvda-20260302.htm", "edgar/blk_8k_0001193125-23-048785.txt"),
    "edgar-submissions": ("edgar/submissions_CIK0001800903_small.json",),
    "stocktwits": ("social/stocktwits_streams_symbol_AAPL_2020-04-24.json",),
    "tweets": ("social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl",),
    "reddit-csv": ("social/reddit_wsb_comments_2024-10-11.csv",),
}
# Seeds are cut to this: the mutations, not the length, find the bugs (and it keeps it fast).
SEED_CHARS = 24_000
XML_KINDS = ("rss", "edgar-atom")
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
FRAGMENTS = (
    "<item>",
    "</item>",
    "<entry>",
    "</entry>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "&amp;",
    "&bogus;",
    "&#0;",
    "&#xD800;",
    '<?xml version="1.0" encoding="utf-32"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    "<!DOCTYPE x>",
    "<![ x>",
    "&lt;![ x&gt;",
    "<a ",
    '<b x="',
    '<sa:symbol xmlns:sa="https://seekingalpha.com/api/1.0">MSFT</sa:symbol>',
    "<DOCUMENT>",
    "<TEXT>",
    "<SEC-HEADER>",
    '<ix:nonNumeric name="dei:DocumentType">',
    "</ix:nonNumeric>",
    '<div id="formName">',
    '<div class="infoHead">',
    "</div>",
    "Item 2.02 Results",
    "{",
    "}",
    "[",
    "]",
    '"',
    ",",
    ":",
    '"id": ',
    "-1e999",
    "NaN",
    "\n",
    "\r",
    "\x00",
    "\ufeff",
    "\u2028",
    "$AAPL NYSE: IBM",
)
ENTITIES = (
    '<!ENTITY e "eee">',
    '<!ENTITY e SYSTEM "file:///etc/passwd">',
    '<!ENTITY e PUBLIC "-//x//y" "http://127.0.0.1:9/e.dtd">',
    '<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd">%p;',
    '<!ENTITY a:b "eee">',
    '<!ENTITY a:b SYSTEM "file:///etc/passwd">',
    '<!ENTITY  e\t"eee" >',
    # Billion laughs: ten levels of ten.
    '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")), max_size=40)


@pytest.fixture(scope="module")
def seeds(shared_dir: Path) -> dict[str, list[str]]:
    """Return each kind's recordings as text, cut to SEED_CHARS."""
    fixtures = shared_dir / "fixtures"
    return {
        kind: [decode((fixtures / name).read_bytes())[0][:SEED_CHARS] for name in names]
        for kind, names in SEEDS.items()
    }


def run_parser(kind: str, raw: bytes) -> list[Document | Rejected]:
    """Parse with the kind's source; check what every output must be."""
    out = list(make_source(kind, "fuzz", URL).parse(raw, FETCHED))
    for item in out:
        assert isinstance(item, Document | Rejected), type(item)
        if isinstance(item, Rejected):
            assert item.reason.strip() and item.detail.strip(), item
            assert isinstance(item.payload, str)
        else:
            assert item.published_at.tzinfo is not None and item.fetched_at.tzinfo is not None
            assert item.doc_id and item.source == "fuzz"
    return out


def encode(text: str, encoding: str, bom: bool) -> bytes:
    """Encode text, with a byte-order mark when asked (the encoding names its byte order)."""
    return (("\ufeff" if bom else "") + text).encode(encoding, "replace")


def at(text: str, where: float) -> int:
    return int(where * len(text))


# -- generated documents of every kind ---------------------------------------------------


def _rss(texts: list[str], declaration: str) -> str:
    items = "".join(
        f"<item><guid>g{i}</guid><title>{escape(t)}</title>"
        f'<sa:symbol xmlns:sa="https://seekingalpha.com/api/1.0">MSFT</sa:symbol></item>'
        for i, t in enumerate(texts)
    )
    return f'{declaration}<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


def _atom(texts: list[str], declaration: str) -> str:
    entries = "".join(
        f"<entry><title>8-K - {escape(t)} (0000320193) (Filer)</title>"
        f"<id>urn:tag:sec.gov,2008:accession-number=0000320193-24-{i:06d}</id>"
        f"<updated>2024-01-0{i % 9 + 1}T10:00:00-05:00</updated>"
        f"<summary>Filed: 2024-01-02 Item 2.02: {escape(t)}</summary></entry>"
        for i, t in enumerate(texts)
    )
    return (
        f'{declaration}<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'
    )


def _index(texts: list[str], _: str) -> str:
    name = html.escape(texts[0] if texts else "")
    return (
        f'<html><body><div id="formName">Form 8-K - {name}:</div>'
        '<div id="secNum">0000320193-24-000001</div>'
        '<div class="infoHead">Filing Date</div><div class="info">2024-01-02</div>'
        f'<div class="infoHead">Items</div><div class="info">Item 2.02: {name}</div>'
        f'<span class="companyName">{name or "x"} (Filer) CIK: 0000320193</span></body></html>'
    )


def _doc(texts: list[str], _: str) -> str:
    body = "".join(f"<p>{html.escape(t)}</p>" for t in texts)
    return (
        "<SEC-HEADER>ACCESSION NUMBER: 0000320193-24-000001\n"
        "CONFORMED SUBMISSION TYPE: 8-K\n</SEC-HEADER>"
        "<DOCUMENT>\n<TYPE>8-K\n<TEXT><html><p>Item 2.02 Results</p>"
        f"{body}</html></TEXT></DOCUMENT>"
    )


def _submissions(texts: list[str], _: str) -> str:
    recent = {
        "accessionNumber": [f"0000320193-24-{i:06d}" for i in range(len(texts))],
        "form": ["8-K"] * len(texts),
        "filingDate": ["2024-01-02"] * len(texts),
        "primaryDocDescription": texts,
    }
    data = {"cik": "320193", "name": "ACME", "filings": {"recent": recent}}
    return json.dumps(data, ensure_ascii=False)


def _stocktwits(texts: list[str], _: str) -> str:
    messages = [
        {"id": i + 1, "body": t, "created_at": "2020-04-24T18:35:11Z"} for i, t in enumerate(texts)
    ]
    return json.dumps({"response": {"status": 200}, "messages": messages}, ensure_ascii=False)


def _tweets(texts: list[str], _: str) -> str:
    created = "Thu Jan 02 23:59:59 +0000 2014"
    return "\n".join(
        json.dumps({"id_str": str(i + 1), "text": t, "created_at": created}, ensure_ascii=False)
        for i, t in enumerate(texts)
    )


def _reddit(texts: list[str], _: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Comment ID", "Username", "Comment Body", "Upvotes", "Date"])
    writer.writerows([f"c{i}", "u", t, "3", "2024-10-11 12:00:00"] for i, t in enumerate(texts))
    return out.getvalue()


GENERATORS: dict[str, Callable[[list[str], str], str]] = {
    "rss": _rss,
    "edgar-atom": _atom,
    "edgar-index": _index,
    "edgar-doc": _doc,
    "edgar-submissions": _submissions,
    "stocktwits": _stocktwits,
    "tweets": _tweets,
    "reddit-csv": _reddit,
}


def test_every_kind_ingest_parse_offers_is_fuzzed() -> None:
    assert set(SEEDS) == set(GENERATORS) == set(KINDS)


def _declaration(encoding: str | None) -> str:
    if encoding is None:
        return ""
    return f'<?xml version="1.0" encoding="{encoding}"?>'


# -- the properties ----------------------------------------------------------------------

text_ops = st.one_of(
    st.tuples(st.just("fragment"), st.floats(0, 1), st.sampled_from(FRAGMENTS)),
    st.tuples(
        st.just("number"), st.floats(0, 1), st.sampled_from(["9" * 5_000, "-" + "9" * 4_400])
    ),
    st.tuples(st.just("nest"), st.floats(0, 1), st.sampled_from(["[" * 50_000, "<a>" * 5_000])),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just("")),
    st.tuples(st.just("text"), st.floats(0, 1), TEXT),
)
byte_ops = st.tuples(
    st.sampled_from(["insert", "delete", "cut"]), st.floats(0, 1), st.binary(min_size=1, max_size=8)
)
encodings = st.tuples(st.sampled_from([*ENCODINGS, "latin-1", "cp1252"]), st.booleans()).map(
    lambda e: (e[0], e[1] and e[0] in ENCODINGS)
)


def _apply_text(text: str, op: tuple[str, float, str]) -> str:
    name, where, data = op
    cut = at(text, where)
    if name == "cut":
        return text[:cut]
    if name == "number":
        # A JSON number in place of the first one, or wherever the op points.
        replaced = re.sub(r"(?<=: )\d+", data, text, count=1)
        return replaced if replaced != text else text[:cut] + data + text[cut:]
    return text[:cut] + data + text[cut:]


def _apply_bytes(raw: bytes, op: tuple[str, float, bytes]) -> bytes:
    name, where, data = op
    cut = int(where * len(raw))
    if name == "insert":
        return raw[:cut] + data + raw[cut:]
    if name == "delete":
        return raw[:cut] + raw[cut + len(data) :]
    return raw[:cut]


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, 7),
    texts=st.lists(TEXT, max_size=5),
    generated=st.booleans(),
    ops=st.lists(text_ops, max_size=3),
    encoding=encodings,
    raw_ops=st.lists(byte_ops, max_size=2),
)
def test_mangled_input_gives_documents_or_reasoned_rejects(
    seeds: dict[str, list[str]],
    kind: str,
    which: int,
    texts: list[str],
    generated: bool,
    ops: list[tuple[str, float, str]],
    encoding: tuple[str, bool],
    raw_ops: list[tuple[str, float, bytes]],
) -> None:
    recordings = seeds[kind]
    text = GENERATORS[kind](texts, "") if generated else recordings[which % len(recordings)]
    for op in ops:
        text = _apply_text(text, op)
    raw = encode(text, *encoding)
    for raw_op in raw_ops:
        raw = _apply_bytes(raw, raw_op)
    run_parser(kind, raw)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, 7),
    entity=st.sampled_from(ENTITIES),
    padding=st.sampled_from([0, 100, 70_000]),
    encoding=st.sampled_from([*ENCODINGS, "latin-1"]),
    bom=st.booleans(),
    declared=st.sampled_from(["same", "utf-8", None]),
    cut=st.floats(0.5, 1),
)
def test_entity_declarations_are_refused_in_any_disguise(
    seeds: dict[str, list[str]],
    kind: str,
    which: int,
    entity: str,
    padding: int,
    encoding: str,
    bom: bool,
    declared: str | None,
    cut: float,
) -> None:
    recordings = seeds[kind]
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", recordings[which % len(recordings)])
    name = encoding.removesuffix("-le").removesuffix("-be")
    prolog = _declaration(name if declared == "same" else declared)
    comment = f"<!--{'x' * padding}-->" if padding else ""
    text = f"{prolog}{comment}<!DOCTYPE r [{entity}]>" + body[: at(body, cut)]
    out = run_parser(kind, encode(text, encoding, bom and encoding in ENCODINGS))
    if kind in XML_KINDS:
        # The whole input is refused, however the declaration is dressed.
        external = "SYSTEM" in entity or "PUBLIC" in entity
        expected = "unsafe_xml" if external else "xml_bomb"
        assert [(type(item), getattr(item, "reason", "")) for item in out] == [(Rejected, expected)]


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(TEXT, min_size=1, max_size=5),
    encoding=st.sampled_from(ENCODINGS),
    bom=st.booleans(),
    declared=st.booleans(),
)
def test_a_generated_input_reads_the_same_in_every_unicode_encoding(
    kind: str, texts: list[str], encoding: str, bom: bool, declared: bool
) -> None:
    # A word in each text, so that every entry has content and becomes a document.
    texts = [f"w{t}" for t in texts]
    name = encoding.removesuffix("-le").removesuffix("-be")
    text = GENERATORS[kind](texts, _declaration(name) if declared else "")

    def summary(raw: bytes) -> list[tuple[str, str]]:
        return [
            (item.doc_id, item.title) if isinstance(item, Document) else ("reject", item.reason)
            for item in run_parser(kind, raw)
        ]

    utf8 = summary(GENERATORS[kind](texts, _declaration("utf-8") if declared else "").encode())
    assert summary(encode(text, encoding, bom)) == utf8
    assert any(key != "reject" for key, _ in utf8)


@settings(max_examples=16, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(list(KINDS)),
    unit=st.one_of(st.sampled_from(FRAGMENTS), st.just("")),
    size=st.integers(200_000, 500_000),
    encoding=st.sampled_from(["utf-8", "utf-16-le", "utf-32-be"]),
)
def test_large_inputs_finish_with_documents_or_reasoned_rejects(
    seeds: dict[str, list[str]], kind: str, unit: str, size: int, encoding: str
) -> None:
    # An empty unit grows the kind's first recording instead of repeating a fragment.
    unit = unit or seeds[kind][0]
    text = unit * (size // len(unit) + 1)
    out = run_parser(kind, text[:size].encode(encoding, "replace"))
    assert out
