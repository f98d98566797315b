"""A recorded feed into docs.raw, for the tests that start a worker: a list in."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

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


def _behind(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """The records of the topics the consumer group has not committed yet, by partition
    (``topic/partition``: count), those it has all committed left out."""
    # Reading a group's committed offsets does not join the group.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(tps)
        left = {
            f"{tp.topic}/{tp.partition}": end - (consumer.committed(tp) or 0)
            for tp, end in ends.items()
        }
        return {where: count for where, count in left.items() if count}
    finally:
        consumer.close()


def committed(
    settings: Settings, timeout: float, groups: dict[str, list[str]] | None = None
) -> None:
    """Wait until the consumer groups have committed every record of their topics: by
    default the classify and store groups of the split roles.

    The store's seen counters count repeats (what a killed classify worker had sent and its
    successor sent again), so they reach the expected totals before the last rows are in.
    """
    prefix, deadline = settings.topic_prefix, time.monotonic() + timeout
    groups = groups or {
        f"{settings.app_id}-classify": [f"{prefix}docs.raw"],
        settings.app_id: [f"{prefix}docs.raw", f"{prefix}docs.scored", f"{prefix}alerts"],
    }
    while behind := {
        g: b for g, t in groups.items() if (b := _behind(settings.bootstrap_servers, g, t))
    }:
        assert time.monotonic() < deadline, f"records left uncommitted: {behind}"
        time.sleep(1.0)


def trace(settings: Settings, pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    """Where the given (document, ticker) pairs are on docs.scored, for a failure's message:
    each as ``partition/offset origin=...`` records (none when it never got there)."""
    topic = f"{settings.topic_prefix}docs.scored"
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    found: dict[str, list[str]] = {f"{d}/{t}": [] for d, t in pairs}
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        for message in consumer:
            value = json.loads(message.value)
            key = f"{value.get('doc_id')}/{value.get('ticker')}"
            if key in found:
                origin = value.get("origin")
                found[key].append(f"{message.partition}/{message.offset} origin={origin}")
            tp = TopicPartition(topic, message.partition)
            if message.offset + 1 >= ends[tp]:
                left.discard(tp)
            if not left:
                break
    finally:
        consumer.close()
    return found
