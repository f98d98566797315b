"""A local three-broker Kafka cluster replicates topics and loses no acknowledged write."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from infra.broker import LocalKafka
from infra.cluster import LocalCluster
from infra.topics import ensure_topics, replication_factor
from surveil.cli import cli
from tests.test_broker import read_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def describe(bootstrap: str, topic: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The topic's partitions and its configs that differ from the broker defaults."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-cluster")
    try:
        (described,) = admin.describe_topics([topic])
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        configs = admin.describe_configs([resource])
    finally:
        admin.close()
    topic_configs = configs["topic"][topic]
    return described["partitions"], {name: c["value"] for name, c in topic_configs.items()}


def kill(node: LocalKafka) -> None:
    """Kill a node's JVM (SIGKILL), as a crash would, and wait until it is gone."""
    pid = node.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while node.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not node.status().running


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for value in values:
            producer.send(topic, value=value)
        producer.flush(timeout=90)
    finally:
        producer.close()


def _status(cluster: LocalCluster) -> tuple[int, str]:
    """`surveil kafka status` on the cluster's home and ports."""
    env = {
        "SURVEIL_STATE_DIR": str(cluster.home.parent),
        "SURVEIL_KAFKA_BROKER": f"kafka://{cluster.nodes[0].bootstrap}",
        "SURVEIL_KAFKA_CONTROLLER_PORT": str(cluster.nodes[0].config.controller_port),
    }
    result = CliRunner().invoke(cli, ["kafka", "status"], env=env, catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())  # the console wraps long lines


def test_topics_get_three_replicas_and_two_in_sync(kafka_cluster: LocalCluster) -> None:
    assert ensure_topics(kafka_cluster.bootstrap, ["c.replicated"], 3) == ["c.replicated"]

    partitions, configs = describe(kafka_cluster.bootstrap, "c.replicated")
    assert [len(p["replica_nodes"]) for p in partitions] == [3, 3, 3]
    assert configs["min.insync.replicas"] == "2"
    code, out = _status(kafka_cluster)
    assert code == 0
    assert all(f"broker {i}: running: pid" in out for i in (1, 2, 3))
    assert replication_factor(kafka_cluster.bootstrap) == 3  # what Faust's own topics get


def test_acknowledged_writes_survive_a_killed_leader(kafka_cluster: LocalCluster) -> None:
    bootstrap = kafka_cluster.bootstrap
    ensure_topics(bootstrap, ["c.survive"], 1)
    before = [f"before-{i}".encode() for i in range(200)]
    after = [f"after-{i}".encode() for i in range(200)]
    _produce(bootstrap, "c.survive", before)

    (partition,) = describe(bootstrap, "c.survive")[0]
    leader = kafka_cluster.nodes[partition["leader_id"] - 1]
    kill(leader)
    _produce(bootstrap, "c.survive", after)

    assert read_all(bootstrap, "c.survive") == before + after
    (partition,) = describe(bootstrap, "c.survive")[0]
    assert kafka_cluster.nodes[partition["leader_id"] - 1] is not leader
    code, out = _status(kafka_cluster)
    assert code == 1 and f"broker {leader.config.node_id}: not running" in out

    assert kafka_cluster.start() is True
    assert kafka_cluster.answers() == [True, True, True]
    code, out = _status(kafka_cluster)
    assert code == 0 and all(f"broker {i}: running: pid" in out for i in (1, 2, 3))
