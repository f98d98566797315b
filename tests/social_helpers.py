"""What the social source tests share: the recordings, one parse, a parse per source."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.base import Source
from ingest.reddit import RedditCsvSource
from ingest.stocktwits import StocktwitsSource
from ingest.tweets import TweetsSource
from streams.records import Document, Rejected
from tests.parsing import parse_all

STOCKTWITS = "fixtures/social/stocktwits_streams_symbol_AAPL_2020-04-24.json"
TWEETS = "fixtures/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"
REDDIT = "fixtures/social/reddit_wsb_comments_2024-10-11.csv"
HTML_PAGE = "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"
FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SocialSource = type[StocktwitsSource | TweetsSource | RedditCsvSource]
SOURCES: list[SocialSource] = [
    StocktwitsSource,
    TweetsSource,
    RedditCsvSource,
]


def parse(source: Source, raw: bytes) -> tuple[list[Document], list[Rejected]]:
    """Parse bytes fetched at FETCHED; every item must be a Document or a Rejected."""
    return parse_all(source, raw, FETCHED)


def stocktwits(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(StocktwitsSource("st", "unused", **options), raw)


def tweets(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(TweetsSource("tw", "unused", **options), raw)


def reddit(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    return parse(RedditCsvSource("wsb", "unused", **options), raw)


def by_meta(docs: list[Document], key: str) -> dict[Any, Document]:
    return {doc.meta[key]: doc for doc in docs}
