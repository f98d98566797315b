"""Put documents on docs.raw and rejects on docs.dlq with kafka-python, and read back keys.

The producer is idempotent (no duplicates from its own retries) and waits for acks from all
in-sync replicas. What it cannot know is whether a batch reached Kafka when the process
dies between the send and the ingest state's bookkeeping; `sent_keys` answers that after a
restart by reading docs.raw from a checkpoint (the end offsets saved after the last
completed run) to its end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.serializer import DefaultSerializer, JsonSerializer

from infra.errors import BrokerError
from streams.ranges import Offsets, TopicRange
from streams.records import Document, Rejected
from streams.topics import DOCS_DLQ, DOCS_RAW

log = logging.getLogger(__name__)


@dataclass
class Sent:
    """How many records one publish call put on each topic."""

    documents: int = 0
    rejected: int = 0


class DocumentProducer:
    """A durable producer: acks from all in-sync replicas, retries, key = doc_id.

    Args:
        bootstrap: ``host:port[,host:port]`` of the brokers.
        topic_prefix: the namespace of the topics (empty for the live pipeline).
    """

    def __init__(
        self, bootstrap: str, *, topic_prefix: str = "", client_id: str = "surveil-ingest"
    ) -> None:
        self._raw = f"{topic_prefix}{DOCS_RAW}"
        self._dlq = f"{topic_prefix}{DOCS_DLQ}"
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap.split(","),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                retry_backoff_ms=200,
                linger_ms=5,
                max_in_flight_requests_per_connection=1,
                key_serializer=DefaultSerializer(),
                value_serializer=JsonSerializer(),
            )
        except KafkaError as exc:
            msg = f"cannot reach Kafka at {bootstrap}: {exc}"
            raise BrokerError(msg) from exc

    def publish(
        self,
        documents: Iterable[Document],
        rejected: Iterable[Rejected] = (),
        timeout: float = 30.0,
    ) -> Sent:
        """Send documents and rejects, wait for every acknowledgement.

        Raises:
            BrokerError: a record could not be delivered; nothing is assumed sent.
        """
        sent = Sent()
        futures = []
        for doc in documents:
            futures.append(self._producer.send(self._raw, key=doc.doc_id, value=doc.to_json()))
            sent.documents += 1
        for rej in rejected:
            key = f"{rej.stage}:{rej.source}"
            futures.append(self._producer.send(self._dlq, key=key, value=rej.to_json()))
            sent.rejected += 1
        try:
            self._producer.flush(timeout=timeout)
            for future in futures:
                future.get(timeout=timeout)
        except KafkaError as exc:
            msg = f"delivery to Kafka failed: {exc}"
            raise BrokerError(msg) from exc
        log.debug("published %d documents, %d rejects", sent.documents, sent.rejected)
        return sent

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)


class TopicReader:
    """Read end offsets and record keys of one topic (docs.raw), through the one range
    reader `streams.ranges.TopicRange`.

    Args:
        bootstrap: ``host:port[,host:port]`` of the brokers.
        topic: the full topic name (prefix included).
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._range = TopicRange(bootstrap, topic, client_id="surveil-ingest-recovery")

    def end_offsets(self) -> Offsets:
        """Return the next offset of every partition (where new records will land)."""
        return self._range.ends()

    def keys_since(self, start: Offsets, timeout: float = 120.0) -> set[str]:
        """Return the keys of every record from ``start`` to the current end.

        Partitions missing from ``start`` (added since) are read from their beginning.

        Raises:
            BrokerError: Kafka failed, or the end was not reached within ``timeout`` seconds.
        """
        ends = self._range.ends()
        first = {p: start.get(p, 0) for p in ends}
        return {m.key for m in self._range.read(first, ends, timeout) if m.key}

    def close(self) -> None:
        """Close the consumer."""
        self._range.close()
