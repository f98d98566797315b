"""The one Kafka range reader: a topic's records between offsets, read to the end and stopped.

A replay reads docs.raw from a time (or its beginning) to the end offsets it found at the
start; an ingest run that lost its checkpoint reads the keys written since its last one.
Both read each partition from a first offset up to a fixed end with kafka-python, assigned
(no consumer group, nothing committed), and give up with `BrokerError` past a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from infra.closing import Closing
from infra.errors import BrokerError

Offsets = dict[int, int]


class Message(NamedTuple):
    """One record of a range: where it sits, when Kafka took it, its key and raw value."""

    timestamp: int  # ms
    partition: int
    offset: int
    key: str | None
    value: bytes | None


class TopicRange(Closing):
    """Read a topic's records between offsets, partition by partition.

    Args:
        bootstrap: ``host:port[,host:port]`` of the brokers.
        topic: the full topic name (prefix included).
        client_id: how the reader shows in the broker's logs.
    """

    def __init__(self, bootstrap: str, topic: str, client_id: str = "surveil-range") -> None:
        self.topic = topic
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap.split(","),
                client_id=client_id,
                group_id=None,
                enable_auto_commit=False,
            )
        except KafkaError as exc:
            msg = f"cannot reach Kafka at {bootstrap}: {exc}"
            raise BrokerError(msg) from exc

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def partitions(self) -> list[TopicPartition]:
        """The topic's partitions (none when it does not exist)."""
        try:
            ids = self._consumer.partitions_for_topic(self.topic) or set()
        except KafkaError as exc:
            msg = f"cannot read the partitions of {self.topic}: {exc}"
            raise BrokerError(msg) from exc
        return [TopicPartition(self.topic, p) for p in sorted(ids)]

    def ends(self) -> Offsets:
        """The next offset of every partition (where new records will land)."""
        return self._offsets(lambda parts: self._consumer.end_offsets(parts))

    def beginnings(self) -> Offsets:
        """The first offset still held by every partition."""
        return self._offsets(lambda parts: self._consumer.beginning_offsets(parts))

    def at(self, when: datetime) -> Offsets:
        """The first offset at or after ``when`` (Kafka timestamps) of every partition that
        has one."""
        ms = int(when.timestamp() * 1000)
        try:
            found = self._consumer.offsets_for_times(dict.fromkeys(self.partitions(), ms))
        except KafkaError as exc:
            msg = f"cannot look up offsets by time in {self.topic}: {exc}"
            raise BrokerError(msg) from exc
        return {tp.partition: at.offset for tp, at in found.items() if at is not None}

    def read(self, first: Offsets, ends: Offsets, timeout: float = 300.0) -> Iterator[Message]:
        """Yield every record from ``first`` up to ``ends`` (exclusive), partition by partition.

        A partition missing from ``first`` is not read.

        Raises:
            BrokerError: Kafka failed, or the ends were not reached within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        try:
            for partition, start in sorted(first.items()):
                end = ends.get(partition, 0)
                if start >= end:
                    continue
                yield from self._partition(
                    TopicPartition(self.topic, partition), start, end, deadline
                )
        except KafkaError as exc:
            msg = f"cannot read {self.topic}: {exc}"
            raise BrokerError(msg) from exc

    def _partition(
        self, tp: TopicPartition, start: int, end: int, deadline: float
    ) -> Iterator[Message]:
        self._consumer.assign([tp])
        self._consumer.seek(tp, start)
        while self._consumer.position(tp) < end:
            if time.monotonic() > deadline:
                msg = (
                    f"reading {self.topic} back did not reach offset {end} of partition "
                    f"{tp.partition} in time"
                )
                raise BrokerError(msg)
            for batch in self._consumer.poll(timeout_ms=1_000, max_records=5_000).values():
                for r in batch:
                    if r.offset < end:
                        key = r.key.decode("utf-8", "replace") if r.key is not None else None
                        yield Message(r.timestamp, tp.partition, r.offset, key, r.value)

    def _offsets(self, lookup: Any) -> Offsets:
        try:
            found = lookup(self.partitions())
        except KafkaError as exc:
            msg = f"cannot read the offsets of {self.topic}: {exc}"
            raise BrokerError(msg) from exc
        return {tp.partition: int(offset) for tp, offset in found.items()}
