"""What an ingest run reports on the real broker: unknown tickers dead-lettered, a summary line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from infra.settings import Settings
from ingest.base import collect
from ingest.config import make_source
from ingest.rss import RssSource
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.records import Document, Rejected
from streams.topics import DOCS_DLQ, DOCS_RAW
from tests.ingest_helpers import make_ingestor, read_topic, with_topics


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return with_topics(make_settings())


class Mistyped(RssSource):
    """An RSS source whose documents also declare "AAPL1", which is no ticker at all."""

    def parse(
        self, raw: bytes, fetched_at: datetime | None = None
    ) -> Iterator[Document | Rejected]:
        for item in super().parse(raw, fetched_at):
            if isinstance(item, Document):
                item = item.model_copy(update={"tickers": (*item.tickers, "AAPL1")})
            yield item


@pytest.mark.integration
def test_unknown_tickers_are_dead_lettered_and_the_document_goes_on(
    settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>w</title><item><guid>u1</guid>'
        "<title>$AAPL and $QQQQZ jump</title><pubDate>Mon, 02 Mar 2026 14:00:00 GMT</pubDate>"
        "</item></channel></rss>"
    )
    ingestor, close = make_ingestor(settings)
    ingestor.linker = Linker(Universe.load(shared_dir))
    try:
        ingestor.recover()
        wire = Mistyped("wire", str(feed))
        first = ingestor.run(wire)
        again = ingestor.run(wire)
    finally:
        close()
    assert (first.documents, first.rejected, again.documents, again.rejected) == (1, 1, 0, 0)
    [(_, doc)] = read_topic(settings, DOCS_RAW)
    # $QQQQZ is a well-formed symbol missing from today's lists: kept, unlisted, weighted down.
    assert doc["tickers"] == ["AAPL", "QQQQZ"] and doc["meta"]["unlisted"] == ["QQQQZ"]
    assert doc["meta"]["relevance"] == {"AAPL": 1.0, "QQQQZ": 0.5}
    [(_, dead)] = read_topic(settings, DOCS_DLQ)
    assert dead["reason"] == "unknown_ticker" and "AAPL1" in dead["detail"]
    assert ingestor.counters.get("ingest.rejected.unknown_ticker") == 1
    assert (first.unknown, first.unlisted) == (["AAPL1"], ["QQQQZ"])


SA = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"
WSB = "fixtures/social/reddit_wsb_comments_2024-10-11.csv"


@pytest.mark.integration
def test_a_run_logs_one_summary_line_and_the_details_at_debug(
    settings: Settings, shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor, close = make_ingestor(settings)
    ingestor.linker = Linker(Universe.load(shared_dir))
    sa = make_source("rss", "sa-msft", str(shared_dir / SA))
    wsb = make_source("reddit-csv", "wsb", str(shared_dir / WSB))
    try:
        ingestor.recover()
        with caplog.at_level(logging.DEBUG, logger="ingest"):
            runs = [ingestor.run(sa), ingestor.run(wsb), ingestor.run(wsb)]
    finally:
        close()
    ours = [r for r in caplog.records if r.name.startswith("ingest.")]
    said = [(r.levelname, r.getMessage()) for r in ours if r.levelno >= logging.INFO]
    assert said == [
        ("INFO", "sa-msft: 30 new documents, 68 unlisted tickers kept "
                 "(RHT, SONC, SVU, RISE, AZUL, USAT, CFRX, RGLS ... and 60 more)"),
        ("WARNING", "wsb: 1968 new documents, 21 near-duplicates, "
                    "1 unlisted tickers kept (TWTR), dead-lettered 7 empty_text"),
        ("INFO", "wsb: 0 new documents, 1968 already sent, "
                 "7 rejects already dead-lettered, not sent again"),
    ]  # fmt: skip
    debug = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert sum(m.startswith("sa-msft: ") and "kept as unlisted" in m for m in debug) == sum(
        len(d.meta.get("unlisted", ())) for d in _linked(shared_dir, "rss", SA)
    )
    assert sum("rejected (empty_text)" in m for m in debug) == 14  # parsed on both runs
    # The dead-letter records are what they were: one per empty entry, sent once.
    dead = [v for _, v in read_topic(settings, DOCS_DLQ)]
    assert [d["reason"] for d in dead] == ["empty_text"] * 7 == ["empty_text"] * runs[1].rejected
    assert all(d["source"] == "wsb" and d["detail"].startswith("row ") for d in dead)


def _linked(shared_dir: Path, kind: str, rel: str) -> list[Document]:
    linker = Linker(Universe.load(shared_dir))
    return [
        linker.link(d).doc for d in collect(make_source(kind, "x", str(shared_dir / rel))).documents
    ]
