"""Kafka topic administration: create what is missing and wait until it can be used."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from infra.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

_MAX_REPLICAS = 3


def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    timeout: float = 30.0,
    configs: dict[str, str] | None = None,
) -> list[str]:
    """Create missing topics; return the names created.

    A topic gets as many replicas as there are brokers, at most three; with three it also
    gets ``min.insync.replicas=2``, so a write acknowledged by all in-sync replicas survives
    the loss of a broker. Existing topics are left alone (no error). Returns once every
    named topic has a leader for all its partitions, so producers do not hit UNKNOWN_TOPIC
    right after.

    Args:
        bootstrap: ``host:port`` of the broker.
        names: topic names; duplicates are ignored.
        partitions: partitions of each topic created.
        timeout: seconds for the whole operation.
        configs: topic configs of the topics created, e.g. ``{"cleanup.policy": "compact"}``;
            they take precedence over the ``min.insync.replicas`` chosen here.
    """
    wanted = list(dict.fromkeys(names))
    if partitions < 1:
        msg = f"a topic needs at least one partition, got {partitions}"
        raise ConfigError(msg)
    if not wanted:
        return []
    deadline = time.monotonic() + timeout
    timeout_ms = int(timeout * 1000)
    try:
        admin = admin_client(bootstrap, "surveil-admin", timeout)
    except KafkaError as exc:
        msg = f"cannot reach Kafka at {bootstrap}: {exc}"
        raise BrokerError(msg) from exc
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        created = _create(admin, missing, partitions, configs, timeout_ms) if missing else []
        left_ms = max(int((deadline - time.monotonic()) * 1000), 1000)
        admin.wait_for_topics(wanted, timeout_ms=left_ms)
    except KafkaError as exc:
        msg = f"Kafka at {bootstrap} failed while creating topics {wanted}: {exc}"
        raise BrokerError(msg) from exc
    finally:
        admin.close()
    if created:
        log.info("created topics %s with %d partitions", created, partitions)
    return created


def admin_client(bootstrap: str, client_id: str, timeout: float) -> KafkaAdminClient:
    """Open an admin client whose requests and bootstrap each wait ``timeout`` seconds.

    Raises:
        KafkaError: the broker cannot be reached.
    """
    timeout_ms = int(timeout * 1000)
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def replication_factor(bootstrap: str, timeout: float = 30.0) -> int:
    """Return the replicas a topic gets on the cluster at ``bootstrap``, as `ensure_topics`
    gives them: one per broker, at most three.

    Raises:
        BrokerError: the cluster cannot be reached.
    """
    try:
        admin = admin_client(bootstrap, "surveil-admin", timeout)
        try:
            return _replicas(admin)
        finally:
            admin.close()
    except KafkaError as exc:
        msg = f"cannot reach Kafka at {bootstrap}: {exc}"
        raise BrokerError(msg) from exc


def _replicas(admin: KafkaAdminClient) -> int:
    return min(len(admin.describe_cluster()["brokers"]), _MAX_REPLICAS)


def _create(
    admin: KafkaAdminClient,
    missing: list[str],
    partitions: int,
    configs: dict[str, str] | None,
    timeout_ms: int,
) -> list[str]:
    """Create the missing topics; return those this call made (others may make some too).

    Raises:
        BrokerError: Kafka refused a topic for another reason than that it exists.
    """
    replicas = _replicas(admin)
    wanted = {"min.insync.replicas": "2"} if replicas >= _MAX_REPLICAS else {}
    wanted.update(configs or {})
    spec: dict[str, dict[str, Any]] = {
        name: {"num_partitions": partitions, "replication_factor": replicas} for name in missing
    }
    if wanted:
        for entry in spec.values():
            entry["configs"] = dict(wanted)
    # raise_errors=False: one topic made concurrently must not hide the others' fate.
    result: dict[str, Any] = admin.create_topics(spec, timeout_ms=timeout_ms, raise_errors=False)
    created = []
    for topic in result["topics"]:
        error = for_code(topic["error_code"])
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif error is not TopicAlreadyExistsError:
            msg = (
                f"Kafka refused to create topic {topic['name']!r}: "
                f"{error.__name__} {topic.get('error_message') or ''}".rstrip()
            )
            raise BrokerError(msg)
    return created
