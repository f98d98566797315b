"""A recorded feed into docs.raw, for the tests that start a worker: a list in."""

from __future__ import annotations

from pathlib import Path

from infra.settings import Settings
from ingest.base import Batch, collect
from ingest.producer import DocumentProducer
from ingest.rss import RssSource

MSFT_FEED = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"


def publish_feed(settings: Settings, feed: Path, times: int = 1) -> Batch:
    """Parse an RSS feed and send its documents (and rejects) to docs.raw ``times`` times."""
    batch = collect(RssSource("seekingalpha-msft", str(feed)))
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    try:
        for _ in range(times):
            producer.publish(batch.documents, batch.rejected)
    finally:
        producer.close()
    return batch
