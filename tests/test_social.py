"""Social sources on real recordings and on broken input: bytes in, documents and rejects out."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base import Source
from ingest.reddit import RedditCsvSource
from ingest.stocktwits import StocktwitsSource
from ingest.text import is_symbol
from ingest.tweets import TweetsSource
from streams.records import Document, Rejected, stable_id

STOCKTWITS = "fixtures/social/stocktwits_streams_symbol_AAPL_2020-04-24.json"
TWEETS = "fixtures/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"
REDDIT = "fixtures/social/reddit_wsb_comments_2024-10-11.csv"
HTML_PAGE = "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"
FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EMOTE = re.compile(r"!\[img\]\(emote\|[^)]*\)")
SocialSource = type[StocktwitsSource | TweetsSource | RedditCsvSource]
SOURCES: list[SocialSource] = [
    StocktwitsSource,
    TweetsSource,
    RedditCsvSource,
]


def parse(source: Source, raw: bytes) -> tuple[list[Document], list[Rejected]]:
    """Parse bytes; every item must be a Document or a Rejected."""
    out = list(source.parse(raw, FETCHED))
    docs = [item for item in out if isinstance(item, Document)]
    rejected = [item for item in out if isinstance(item, Rejected)]
    assert len(docs) + len(rejected) == len(out)
    return docs, rejected


def stocktwits(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(StocktwitsSource("st", "unused", **options), raw)


def tweets(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(TweetsSource("tw", "unused", **options), raw)


def reddit(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(RedditCsvSource("wsb", "unused", **options), raw)


def stream(*messages: dict[str, Any]) -> bytes:
    payload = {"response": {"status": 200}, "messages": list(messages)}
    return json.dumps(payload, ensure_ascii=False).encode()


def message(id_: int = 1, body: str = "$AAPL up", **extra: Any) -> dict[str, Any]:
    return {"id": id_, "body": body, "created_at": "2020-04-24T18:35:11Z", **extra}


@pytest.fixture(scope="module")
def st_raw(shared_dir: Path) -> bytes:
    return (shared_dir / STOCKTWITS).read_bytes()


@pytest.fixture(scope="module")
def tw_raw(shared_dir: Path) -> bytes:
    return (shared_dir / TWEETS).read_bytes()


@pytest.fixture(scope="module")
def rd_raw(shared_dir: Path) -> bytes:
    return (shared_dir / REDDIT).read_bytes()


@pytest.fixture(scope="module")
def html_page(shared_dir: Path) -> bytes:
    return (shared_dir / HTML_PAGE).read_bytes()


def by_meta(docs: list[Document], key: str) -> dict[Any, Document]:
    return {doc.meta[key]: doc for doc in docs}


# -- StockTwits: API v2 streams/symbol/AAPL.json -----------------------------------------


def test_stocktwits_gives_one_document_per_message(st_raw: bytes) -> None:
    ids = [m["id"] for m in json.loads(st_raw)["messages"]]
    docs, rejected = stocktwits(st_raw)
    assert (len(ids), len(docs), rejected) == (30, 30, [])
    assert [doc.doc_id for doc in docs] == [stable_id("stocktwits", str(i)) for i in ids]
    assert {(doc.kind, doc.language, doc.body) for doc in docs} == {("social", "en", "")}
    assert all("AAPL" in doc.tickers for doc in docs)


def test_stocktwits_first_message_fields(st_raw: bytes) -> None:
    first = stocktwits(st_raw)[0][0]
    assert first.title == "$MSFT why underperforming $QQQ $AAPL and Nasdaq? Again."
    assert first.url == "https://stocktwits.com/braves716/message/208435113"
    assert first.tickers == ("AAPL", "MSFT", "QQQ")
    assert first.published_at == datetime(2020, 4, 24, 18, 35, 11, tzinfo=UTC)
    assert first.fetched_at == FETCHED
    assert first.meta == {
        "author": "braves716",
        "cashtags": ["MSFT", "QQQ", "AAPL"],
        "symbols": ["AAPL", "MSFT", "QQQ"],
        "user_sentiment": None,
    }


def test_stocktwits_user_sentiment_is_lower_case_or_none(st_raw: bytes) -> None:
    docs = stocktwits(st_raw)[0]
    sentiments = [doc.meta["user_sentiment"] for doc in docs]
    # In the file: 9 Bullish, 8 Bearish, 13 messages with "sentiment": null.
    counts = {s: sentiments.count(s) for s in (None, "bullish", "bearish")}
    assert counts == {None: 13, "bullish": 9, "bearish": 8}
    assert by_meta(docs, "author")["organismee"].meta["user_sentiment"] == "bearish"


def test_stocktwits_likes_and_unescaped_entities(st_raw: bytes) -> None:
    docs = stocktwits(st_raw)[0]
    assert sum("likes" in doc.meta for doc in docs) == 16
    assert by_meta(docs, "author")["goatballsOG"].meta["likes"] == 4
    chartmill = by_meta(docs, "author")["ChartMill"]
    assert chartmill.title.startswith("$AAPL's ROE of 64.25%")
    assert not any("&#39;" in doc.title for doc in docs)


def test_stocktwits_crypto_symbols_stay_out_of_tickers() -> None:
    symbols = [{"symbol": "BTC.X"}, {"symbol": "AAPL"}]
    raw = stream(message(body="$BTC.X and $AAPL", symbols=symbols))
    (doc,), _ = stocktwits(raw, tickers=["MSFT", "not a ticker"])
    assert doc.tickers == ("AAPL", "MSFT")
    assert doc.meta["symbols"] == ["BTC.X", "AAPL"]


def test_stocktwits_odd_field_types_are_ignored_not_trusted() -> None:
    odd = message(user={"username": 5}, symbols=5, entities={"sentiment": {"basic": 5}})
    (doc,), _ = stocktwits(stream(odd | {"likes": {"total": "many"}}))
    assert (doc.url, doc.tickers) == ("", ("AAPL",))
    assert doc.meta == {
        "author": None,
        "cashtags": ["AAPL"],
        "symbols": [],
        "user_sentiment": None,
    }


def test_stocktwits_api_error_status_gives_one_reject() -> None:
    raw = b'{"response": {"status": 404}, "errors": [{"message": "Symbol not found"}]}'
    docs, rejected = stocktwits(raw)
    assert (docs, [r.reason for r in rejected]) == ([], ["api_error"])
    assert rejected[0].detail == "status 404: Symbol not found"


def test_stocktwits_bad_messages_are_rejected_and_the_rest_kept() -> None:
    raw = stream(
        message(1),
        {"body": "no id"},
        {"id": 3, "body": None},
        message(4, created_at="24 April"),
        {"id": 5, "body": "$AAPL no date"},
        message(6, body="&nbsp; "),
    )
    docs, rejected = stocktwits(raw)
    assert [doc.doc_id for doc in docs] == [stable_id("stocktwits", i) for i in ("1", "5")]
    assert docs[1].published_at == FETCHED
    assert docs[1].meta["published_missing"] is True
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [
        ("missing_field", "message 1"),
        ("missing_field", "message 2"),
        ("bad_date", "message 3"),
        ("empty_text", "message 5"),
    ]


def test_stocktwits_long_body_goes_past_the_title_and_is_capped() -> None:
    words = " ".join(f"w{i:04d}" for i in range(2_000))
    (doc,), _ = stocktwits(stream(message(body=words)), body_max_chars=500)
    assert len(doc.title) <= 1_000
    assert not doc.title.endswith(" ")
    assert len(doc.body) == 500
    assert words.startswith(f"{doc.title} {doc.body}")


def test_stocktwits_latin1_json_is_decoded_and_reported() -> None:
    raw = stream(message(body="Caf\u00e9 r\u00e9sum\u00e9 $AAPL")).decode().encode("latin-1")
    (doc,), _ = stocktwits(raw)
    assert doc.title == "Caf\u00e9 r\u00e9sum\u00e9 $AAPL"
    assert doc.meta["encoding"] == "cp1252"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty_input"),
        (b" \n\t", "empty_input"),
        (b'{"response": {"status": 200}, "messages": [{"id": 1, "bo', "malformed_json"),
        ("Caf\u00e9 r\u00e9sum\u00e9".encode("latin-1"), "malformed_json"),
        (b"[1, 2]", "not_a_stocktwits_stream"),
        (b'[{"id": 1, "body": "$AAPL"}]', "not_a_stocktwits_stream"),
        (b'{"response": {"status": 200}}', "not_a_stocktwits_stream"),
        (b'{"messages": {"id": 1}}', "not_a_stocktwits_stream"),
    ],
    ids=[
        "empty",
        "blank",
        "truncated",
        "latin1",
        "list",
        "list-of-messages",
        "no-messages",
        "dict",
    ],
)
def test_stocktwits_wrong_shapes_give_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = stocktwits(raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])


def test_stocktwits_html_page_and_truncated_fixture_are_malformed_json(
    st_raw: bytes, html_page: bytes
) -> None:
    for raw in (html_page, st_raw[: len(st_raw) // 2]):
        docs, rejected = stocktwits(raw)
        assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])


# -- Tweets: Twitter v1.1 objects, one per line -------------------------------------------


def test_tweets_give_one_document_per_line(tw_raw: bytes) -> None:
    ids = [json.loads(line)["id_str"] for line in tw_raw.splitlines() if line.strip()]
    docs, rejected = tweets(tw_raw)
    assert (len(ids), len(docs), rejected) == (33, 33, [])
    assert [doc.doc_id for doc in docs] == [stable_id("tweet", i) for i in ids]
    assert {(doc.kind, doc.language) for doc in docs} == {("social", "en")}
    assert all(doc.meta["lang"] == "en" for doc in docs)


def test_tweets_first_line_fields(tw_raw: bytes) -> None:
    first = tweets(tw_raw)[0][0]
    assert first.title == (
        "$AAPL - Wall St. kicks off New Year on lower note -> http://t.co/GUoph3R13c"
        " #stock #stocks #stockaction"
    )
    assert first.url == "https://twitter.com/stock_newsnet/status/418769914569428992"
    assert first.published_at == datetime(2014, 1, 2, 15, 45, 2, tzinfo=UTC)
    assert first.meta == {"author": "stock_newsnet", "cashtags": ["AAPL"], "lang": "en"}
    assert first.dup_of is None


def test_tweets_dates_are_utc(tw_raw: bytes) -> None:
    docs = tweets(tw_raw)[0]
    by_id = {doc.url.rsplit("/", 1)[-1]: doc for doc in docs}
    # "Wed Jan 01 23:17:48 +0000 2014": the one tweet of the day before.
    assert by_id["418521469170098176"].published_at == datetime(2014, 1, 1, 23, 17, 48, tzinfo=UTC)
    assert all(doc.published_at.utcoffset() == timedelta(0) for doc in docs)
    assert sum(doc.published_at.date().day == 2 for doc in docs) == 32


def test_tweets_html_entities_are_unescaped(tw_raw: bytes) -> None:
    docs = tweets(tw_raw)[0]
    # 7 tweets of the file carry &amp; or &gt;; none is left after parsing.
    assert tw_raw.count(b"&amp;") + tw_raw.count(b"&gt;") >= 7
    assert not any(re.search(r"&(amp|gt|lt);", doc.title) for doc in docs)
    assert sum("S&P's 30%" in doc.title for doc in docs) == 1
    assert sum("-> http" in doc.title for doc in docs) == 5


def test_tweets_retweets_are_duplicates_of_their_original(tw_raw: bytes) -> None:
    docs = tweets(tw_raw)[0]
    retweets = [doc for doc in docs if doc.dup_of]
    assert len(retweets) == 12
    assert all(doc.dup_of == stable_id("tweet", doc.meta["retweet_of"]) for doc in retweets)
    philstock = stable_id("tweet", "418742373007372290")
    assert sum(doc.dup_of == philstock for doc in retweets) == 9
    assert all(doc.title.startswith("RT @") for doc in retweets)


def test_tweets_tickers_come_from_symbol_entities_and_cashtags(tw_raw: bytes) -> None:
    docs = tweets(tw_raw)[0]
    by_id = {doc.url.rsplit("/", 1)[-1]: doc for doc in docs}
    assert by_id["418813682160640000"].tickers == ("SPY", "QQQ", "IWM", "AAPL", "TWTR", "STUDY")
    assert by_id["418765690913705984"].tickers == ("GLD", "USO", "AAPL")
    lower = {"id_str": "9", "text": "buy $aapl", "entities": {"symbols": [{"text": "aapl"}]}}
    (doc,), _ = tweets(json.dumps(lower).encode())
    assert (doc.tickers, doc.meta["cashtags"]) == (("AAPL",), [])


def test_tweets_text_prefers_the_full_text_and_states_its_language() -> None:
    tweet = {
        "id_str": "7",
        "text": "short…",
        "extended_tweet": {"full_text": "the whole &amp; long text"},
        "lang": "es",
        "created_at": "Thu Jan 02 23:59:59 +0000 2014",
    }
    undetermined = {"id": 8, "full_text": "ok", "lang": "und"}
    docs, _ = tweets(f"{json.dumps(tweet)}\n{json.dumps(undetermined)}".encode())
    assert [(d.title, d.language) for d in docs] == [("the whole & long text", "es"), ("ok", "en")]
    assert docs[1].meta["published_missing"] is True


def test_tweets_bad_lines_are_rejected_by_line_number(tw_raw: bytes) -> None:
    good = tw_raw.splitlines()[:2]
    bad = [
        b"not json",
        b'{"text": "no id"}',
        b'{"id_str": "5"}',
        b'{"id_str": "6", "text": "x", "created_at": "2014-01-02"}',
        b"[1, 2]",
    ]
    docs, rejected = tweets(b"\n".join([good[0], *bad, b"", good[1]]))
    assert len(docs) == 2
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [
        ("malformed_json", "line 2"),
        ("missing_field", "line 3"),
        ("missing_field", "line 4"),
        ("bad_date", "line 5"),
        ("not_a_tweet", "line 6"),
    ]
    assert rejected[0].payload == "not json"


def test_tweets_truncated_file_keeps_its_complete_lines(tw_raw: bytes) -> None:
    cut = tw_raw.index(b"\n", len(tw_raw) // 2) + 200
    docs, rejected = tweets(tw_raw[:cut])
    lines = tw_raw[:cut].count(b"\n") + 1
    assert len(docs) == lines - 1
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [
        ("malformed_json", f"line {lines}")
    ]


def test_tweets_json_array_reads_like_json_lines(tw_raw: bytes) -> None:
    array = b"[\n" + b",\n".join(line for line in tw_raw.splitlines() if line.strip()) + b"\n]"
    assert [d.doc_id for d in tweets(array)[0]] == [d.doc_id for d in tweets(tw_raw)[0]]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty_input"),
        (b'{"id_str": "1", "text": "$AAPL', "malformed_json"),
        ("Caf\u00e9 r\u00e9sum\u00e9\nna\u00efve".encode("latin-1"), "malformed_json"),
        (b"[1]", "not_a_tweet"),
    ],
    ids=["empty", "truncated", "latin1", "list"],
)
def test_tweets_wrong_shapes_give_one_reject(raw: bytes, reason: str) -> None:
    docs, rejected = tweets(raw)
    assert (docs, [r.reason for r in rejected]) == ([], [reason])


def test_tweets_html_page_gives_one_reject_not_one_per_line(html_page: bytes) -> None:
    docs, rejected = tweets(html_page)
    assert html_page.count(b"\n") > 100
    assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])


HUGE = "9" * 5_000


@pytest.mark.parametrize(
    ("make", "raw"),
    [
        (StocktwitsSource, f'{{"messages": [{{"id": {HUGE}, "body": "$AAPL up"}}]}}'),
        (TweetsSource, f'{{"id": {HUGE}, "text": "$AAPL up"}}'),
        (TweetsSource, f'[{{"id_str": "1", "text": "$AAPL up", "retweet_count": {HUGE}}}]'),
    ],
    ids=["stocktwits", "tweets-line", "tweets-array"],
)
def test_a_huge_json_integer_gives_a_reject_not_a_traceback(make: SocialSource, raw: str) -> None:
    docs, rejected = parse(make("t", "unused"), raw.encode())
    assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])
    assert "5000 digits" in rejected[0].detail


def test_a_huge_integer_costs_only_its_own_line(tw_raw: bytes) -> None:
    first = tw_raw.split(b"\n")[0]
    docs, rejected = tweets(first + b"\n" + f'{{"id": {HUGE}, "text": "x"}}'.encode())
    assert len(docs) == 1
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [("malformed_json", "line 2")]


@pytest.mark.parametrize("make", SOURCES, ids=lambda s: s.kind)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
def test_a_wide_unicode_recording_parses_like_utf8(
    make: SocialSource, encoding: str, st_raw: bytes, tw_raw: bytes, rd_raw: bytes
) -> None:
    raw = {"stocktwits": st_raw, "tweets": tw_raw, "reddit-csv": rd_raw[:200_000]}[make.kind]
    original = parse(make("t", "unused"), raw)
    docs, rejected = parse(make("t", "unused"), raw.decode("utf-8").encode(encoding))
    assert len(docs) == len(original[0]) > 0
    assert [(d.doc_id, d.title) for d in docs] == [(d.doc_id, d.title) for d in original[0]]
    assert [r.reason for r in rejected] == [r.reason for r in original[1]]


# -- Reddit: CSV export of r/wallstreetbets comments --------------------------------------


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


# -- All three: nothing raises, whatever the bytes ----------------------------------------


@pytest.mark.parametrize("run", ["[" * 50_000, "![" * 50_000, "[a](" * 25_000])
def test_reddit_runs_of_brackets_are_read_in_linear_time(run: str) -> None:
    # The markdown link regex rescanned a run of "[" from each bracket: 24 s on 50,000.
    header = "Comment ID,Username,Comment Body,Upvotes,Date\n"
    raw = f"{header}c1,u,{run} $AAPL,1,2024-10-11 12:00:00\n"
    started = time.monotonic()
    docs, rejected = reddit(raw.encode())
    assert (len(docs), rejected) == (1, []) and docs[0].tickers == ("AAPL",)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
def test_source_satisfies_the_protocol(make: SocialSource) -> None:
    source: Source = make("n", "file:///x", tickers=["AAPL"], body_max_chars=10)
    assert (source.name, source.url, make.kind) == ("n", "file:///x", make.kind)


def check(docs: list[Document], rejected: list[Rejected]) -> None:
    """Hold what every parse result must: symbol tickers, UTC dates, capped text."""
    for doc in docs:
        assert all(is_symbol(t) and not t.endswith(".X") for t in doc.tickers)
        assert doc.published_at.utcoffset() == timedelta(0)
        assert doc.title and len(doc.title) <= 1_000 and len(doc.body) <= 300
    assert all(r.reason and r.payload is not None for r in rejected)


FRAGMENTS = [
    b'{"response": {"status": 200}, "messages": [',
    b'{"id": 1, "body": "$AAPL &amp; $BTC.X", "created_at": "2020-04-24T18:35:11Z"}',
    b'{"id_str": "1", "text": "RT $aapl", "created_at": "Thu Jan 02 23:59:59 +0000 2014"}',
    b'"retweeted_status": {"id_str": "2"}',
    b"Comment ID,Username,Comment Body,Upvotes,Date\n",
    b'c1,u,"multi\nline ![img](emote|t5_2th52|4271)",3,2024-10-10 20:14:05\n',
    b"]}",
    b",",
    b'"',
    b"\n",
    b"\x00\xe9\xff\xfe",
]
socialish = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=20).map(b"".join)


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=2_000) | socialish)
def test_parse_never_raises_on_random_bytes(make: SocialSource, raw: bytes) -> None:
    check(*parse(make("fuzz", "unused", body_max_chars=300), raw))


mutation = st.tuples(
    st.sampled_from(["flip", "delete", "insert", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.binary(min_size=1, max_size=8),
)


@pytest.fixture(scope="module")
def recordings(st_raw: bytes, tw_raw: bytes, rd_raw: bytes) -> dict[str, bytes]:
    # The first 40 kB of the Reddit export hold some 300 comments: plenty, and fast.
    return {"stocktwits": st_raw, "tweets": tw_raw, "reddit-csv": rd_raw[:40_000]}


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
@settings(max_examples=25, deadline=None)
@given(mutations=st.lists(mutation, min_size=1, max_size=5))
def test_parse_never_raises_on_a_mutated_recording(
    recordings: dict[str, bytes], make: SocialSource, mutations: list[tuple[str, float, bytes]]
) -> None:
    raw = recordings[make.kind]
    for op, where, data in mutations:
        at = int(where * len(raw))
        if op == "flip":
            raw = (
                raw[:at] + bytes(b ^ 0xFF for b in raw[at : at + len(data)]) + raw[at + len(data) :]
            )
        elif op == "delete":
            raw = raw[:at] + raw[at + len(data) :]
        elif op == "insert":
            raw = raw[:at] + data + raw[at:]
        else:
            raw = raw[:at]
    docs, rejected = parse(make("fuzz", "unused", body_max_chars=300), raw)
    check(docs, rejected)
    assert docs or rejected or raw.count(b"\n") <= 1
