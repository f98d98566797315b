"""Reddit CSV exports on a real recording and on broken input: documents and rejects out."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime

import pytest

from streams.records import Document, Rejected, stable_id
from tests.social_helpers import (
    FETCHED,
    by_meta,
    reddit,
)

EMOTE = re.compile(r"!\[img\]\(emote\|[^)]*\)")


@pytest.fixture(scope="module")
def rd_rows(rd_raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(rd_raw.decode("utf-8"), newline="")))[1:]


@pytest.fixture(scope="module")
def rd_parsed(rd_raw: bytes) -> tuple[list[Document], list[Rejected]]:
    return reddit(rd_raw)


def test_reddit_gives_one_document_per_comment_with_text(
    rd_rows: list[list[str]], rd_parsed: tuple[list[Document], list[Rejected]]
) -> None:
    docs, rejected = rd_parsed
    # 1,975 comments; 7 of them are nothing but emotes and have no text to classify.
    emote_only = [row[0] for row in rd_rows if not EMOTE.sub("", row[2]).strip()]
    assert (len(rd_rows), len(emote_only)) == (1_975, 7)
    assert (len(docs), {r.reason for r in rejected}) == (1_968, {"empty_text"})
    assert [doc.meta["comment_id"] for doc in docs] == [
        row[0] for row in rd_rows if row[0] not in emote_only
    ]
    assert [doc.doc_id for doc in docs[:1]] == [stable_id("reddit", "lrb0lj9")]
    assert {(doc.kind, doc.url, doc.language) for doc in docs} == {("social", "", "en")}


def test_reddit_rejects_name_the_row_and_line(
    rd_raw: bytes, rd_parsed: tuple[list[Document], list[Rejected]]
) -> None:
    rejected = rd_parsed[1]
    assert rejected[0].detail.startswith("row 660 (line 977):")
    assert rejected[0].payload == rd_raw.decode().splitlines()[976] + "\n"
    assert rejected[0].payload.startswith("lrc9yf0,")


def test_reddit_first_comment_fields(rd_parsed: tuple[list[Document], list[Rejected]]) -> None:
    first = rd_parsed[0][0]
    assert first.title == 'Take a shot every time Elon says "next year"'
    assert first.published_at == datetime(2024, 10, 10, 20, 14, 5, tzinfo=UTC)
    assert first.meta == {
        "published_tz_assumed": "UTC",
        "comment_id": "lrb0lj9",
        "author": "WSB_Mods_are",
        "cashtags": [],
        "upvotes": 67,
    }


def test_reddit_emote_markup_is_gone(rd_parsed: tuple[list[Document], list[Rejected]]) -> None:
    docs = rd_parsed[0]
    assert not any("![" in doc.text or "emote|" in doc.text for doc in docs)
    by_id = by_meta(docs, "comment_id")
    assert by_id["lrbsnf2"].title == "Elmo trying to recoup his 44 billion from the sheep"


def test_reddit_multi_line_bodies_are_kept_whole(
    rd_rows: list[list[str]], rd_parsed: tuple[list[Document], list[Rejected]]
) -> None:
    assert sum("\n" in row[2] for row in rd_rows) == 199
    by_id = by_meta(rd_parsed[0], "comment_id")
    # Paragraphs stay on their own lines; the &nbsp; spacer paragraphs go.
    assert by_id["lrb6mzs"].title == (
        "Self respect: Gone\nDignity: Decimated\nAccount: Deep Red\n"
        "Heterosexuality: Shattered\nBear Thesis: Acquired"
    )
    assert by_id["lrb729f"].title.splitlines()[-1] == "Believe in yourself! Make it happen!"


def test_reddit_long_comment_continues_in_the_body(
    rd_rows: list[list[str]], rd_parsed: tuple[list[Document], list[Rejected]]
) -> None:
    raw_body = next(row[2] for row in rd_rows if row[0] == "lrdea2l")
    doc = by_meta(rd_parsed[0], "comment_id")["lrdea2l"]
    assert len(raw_body) == 1_131
    assert 800 <= len(doc.title) <= 1_000
    assert doc.body.endswith(raw_body.rstrip()[-40:])


def test_reddit_tickers_are_cashtags_only(
    rd_parsed: tuple[list[Document], list[Rejected]],
) -> None:
    docs = rd_parsed[0]
    by_id = by_meta(docs, "comment_id")
    assert by_id["lrcwjb5"].tickers == ("TSLA", "TWTR", "DJT")
    assert by_id["lrbfs8r"].tickers == ("NVDA",)
    # "Puts on Tesla seemed way too obvious": a name, left to the linker.
    assert by_id["lrb63my"].tickers == ()
    assert sum(bool(doc.tickers) for doc in docs) == 14


def test_reddit_markdown_is_read_as_text() -> None:
    body = "#Heading\n\n> quoted\n\n**bold** [link text](https://x.test) \\[1, 2\\] TSLA <100 &amp;"
    raw = f'Comment ID,Username,Comment Body,Upvotes,Date\nc1,u,"{body}",1,2024-10-10 20:14:05\n'
    (doc,), _ = reddit(raw.encode())
    assert doc.title == "Heading\nquoted\nbold link text [1, 2] TSLA <100 &"


def test_reddit_bad_rows_are_rejected_and_the_rest_kept() -> None:
    raw = (
        "Comment ID,Username,Comment Body,Upvotes,Date\n"
        ',u,"no id",1,2024-10-10 20:14:05\n'
        'c2,u,"",1,2024-10-10 20:14:05\n'
        'c3,u,"bad\ndate",1,10/10/2024\n'
        'c4,u,"kept $TSLA\nover two lines",x,\n'
        "c5,u,short row\n"
    )
    docs, rejected = reddit(raw.encode())
    assert [doc.meta["comment_id"] for doc in docs] == ["c4"]
    assert docs[0].title == "kept $TSLA\nover two lines"
    assert docs[0].published_at == FETCHED
    assert docs[0].meta["published_missing"] is True
    assert "upvotes" not in docs[0].meta
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [
        ("missing_field", "row 1 (line 2)"),
        ("missing_field", "row 2 (line 3)"),
        ("bad_date", "row 3 (line 4)"),
        ("missing_field", "row 5 (line 8)"),
    ]


def test_reddit_control_characters_are_dropped() -> None:
    raw = b'Comment ID,Comment Body,Date\nc1,"nul\x00 bell\x07 tab\tend",2024-10-10 20:14:05\n'
    (doc,), _ = reddit(raw)
    assert doc.title == "nul bell tab end"


def test_reddit_date_with_a_zone_is_converted_not_assumed() -> None:
    raw = b"Comment ID,Comment Body,Date\nc1,hi,2024-10-10T22:14:05+02:00\n"
    (doc,), _ = reddit(raw)
    assert doc.published_at == datetime(2024, 10, 10, 20, 14, 5, tzinfo=UTC)
    assert "published_tz_assumed" not in doc.meta


def test_reddit_latin1_export_is_decoded_and_reported() -> None:
    raw = "Comment ID,Comment Body,Date\nc1,Caf\u00e9 $TSLA,2024-10-10 20:14:05\n"
    (doc,), _ = reddit(raw.encode("latin-1"))
    assert (doc.title, doc.tickers) == ("Caf\u00e9 $TSLA", ("TSLA",))
    assert doc.meta["encoding"] == "cp1252"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty_input"),
        (b"\r\n\r\n", "empty_input"),
        ("Caf\u00e9 r\u00e9sum\u00e9\nna\u00efve".encode("latin-1"), "not_a_reddit_export"),
        (b"id,body,created\n1,x,2024-10-10 20:14:05\n", "not_a_reddit_export"),
        (b'[{"Comment ID": "c1"}]', "not_a_reddit_export"),
        (b"Comment ID,Username,Comm", "not_a_reddit_export"),
    ],
    ids=["empty", "blank", "latin1", "other-header", "json-list", "truncated-header"],
)
def test_reddit_wrong_shapes_give_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = reddit(raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])


def test_reddit_html_page_and_other_fixtures_are_no_export(
    html_page: bytes, tw_raw: bytes, st_raw: bytes
) -> None:
    for raw in (html_page, tw_raw, st_raw):
        docs, rejected = reddit(raw)
        assert (docs, [r.reason for r in rejected]) == ([], ["not_a_reddit_export"])


@pytest.mark.parametrize("run", ["[" * 50_000, "![" * 50_000, "[a](" * 25_000])
def test_reddit_runs_of_brackets_are_read_in_linear_time(run: str) -> None:
    # The markdown link regex rescanned a run of "[" from each bracket: 24 s on 50,000.
    header = "Comment ID,Username,Comment Body,Upvotes,Date\n"
    raw = f"{header}c1,u,{run} $AAPL,1,2024-10-11 12:00:00\n"
    started = time.monotonic()
    docs, rejected = reddit(raw.encode())
    assert (len(docs), rejected) == (1, []) and docs[0].tickers == ("AAPL",)
    assert time.monotonic() - started < 5
