"""What the ingest runs on the real broker share: an Ingestor on a test's state, a topic read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.serializer import DefaultSerializer, JsonSerializer

from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.dedup import NearDuplicates
from ingest.http import Fetcher
from ingest.producer import DocumentProducer, TopicReader
from ingest.runner import Checkpoint, Ingestor
from ingest.state import IngestState
from streams.topics import ALL_TOPICS, DOCS_RAW, with_prefix


def with_topics(settings: Settings) -> Settings:
    """Create every topic of the test's namespace, three partitions each."""
    ensure_topics(settings.bootstrap_servers, with_prefix(settings.topic_prefix, ALL_TOPICS), 3)
    return settings


def read_topic(settings: Settings, topic: str) -> list[tuple[str, Any]]:
    """Every (key, value) on a topic of the test's namespace, from the beginning."""
    name = f"{settings.topic_prefix}{topic}"
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        key_deserializer=DefaultSerializer(),
        value_deserializer=JsonSerializer(),
    )
    parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
    ends = consumer.end_offsets(parts)
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list[tuple[str, Any]] = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        assert time.monotonic() < deadline, "could not read the topic to its end"
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                    out.append((r.key, r.value))
    consumer.close()
    return out


def make_ingestor(settings: Settings, producer: Any = None) -> tuple[Ingestor, Callable[[], None]]:
    folder = settings.state_dir / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    state = IngestState(folder / "state.db")
    fetcher = Fetcher(user_agent="surveil-tests", validators=state, retries=1, backoff=0.01)
    real = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    reader = TopicReader(settings.bootstrap_servers, f"{settings.topic_prefix}{DOCS_RAW}")
    ingestor = Ingestor(
        fetcher=fetcher,
        state=state,
        producer=producer(real) if producer else real,
        reader=reader,
        checkpoint=Checkpoint(folder / "checkpoint.json"),
        near_duplicates=NearDuplicates(path=folder / "neardup.json"),
    )

    def close() -> None:
        fetcher.close()
        real.close()
        reader.close()
        state.close()

    return ingestor, close
