"""StockTwits streams on a real recording and on broken input: documents and rejects out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.records import stable_id
from tests.social_helpers import (
    FETCHED,
    by_meta,
    stocktwits,
)


def stream(*messages: dict[str, Any]) -> bytes:
    payload = {"response": {"status": 200}, "messages": list(messages)}
    return json.dumps(payload, ensure_ascii=False).encode()


def message(id_: int = 1, body: str = "$AAPL up", **extra: Any) -> dict[str, Any]:
    return {"id": id_, "body": body, "created_at": "2020-04-24T18:35:11Z", **extra}


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
