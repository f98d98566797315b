"""Tweets (Twitter v1.1 objects, one per line) on a real recording and on broken input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from streams.records import stable_id
from tests.social_helpers import (
    tweets,
)


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
