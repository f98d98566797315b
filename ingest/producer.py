"""Put documents on docs.raw and rejects on docs.dlq with kafka-python."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.serializer import DefaultSerializer, JsonSerializer

from infra.errors import BrokerError
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
                retries=10,
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
        log.info("published %d documents, %d rejects", sent.documents, sent.rejected)
        return sent

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)
