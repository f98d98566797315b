"""A recorded feed into docs.raw, for the tests that start a worker: a list in."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaAdminClient

from infra.settings import Settings
from ingest.base import Batch, collect
from ingest.producer import DocumentProducer
from ingest.rss import RssSource

MSFT_FEED = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"
HALTS_FEED = "fixtures/feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml"


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


def rewind(settings: Settings, *groups: str) -> None:
    """Forget what the stopped workers' consumer groups committed (the app id's when none is
    named): their next start reads every topic from its beginning, a redelivery of all."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.delete_groups(list(groups) or [settings.app_id])
    finally:
        admin.close()
