"""The local Kafka broker starts, serves, stops and keeps its data across a restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from alerts import agent
from alerts.engine import AlertEngine, default_ruleset
from alerts.outbox import Outbox
from infra.broker import BrokerConfig, LocalKafka, free_port
from infra.brokerfiles import server_properties
from infra.cluster import LocalCluster, started_size
from infra.errors import ConfigError
from infra.settings import Settings
from infra.topics import ensure_topics
from streams.app import create_pipeline
from surveil.compose.runtime import worker_config
from surveil.compose.worker import changelog_topics


def _two_ports() -> tuple[int, int]:
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    return port, controller_port


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-broker")
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value of a topic, from the start, read without a consumer group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_start_stop_restart_keeps_topics_and_messages(tmp_path: Path) -> None:
    port, controller_port = _two_ports()
    broker = LocalKafka(
        BrokerConfig(home=tmp_path / "kafka", port=port, controller_port=controller_port)
    )
    bootstrap = broker.bootstrap
    assert bootstrap == f"127.0.0.1:{port}"
    try:
        assert broker.start() is True
        state = broker.status()
        assert state.running
        assert state.pid is not None
        assert state.bootstrap == bootstrap
        assert broker.start() is False

        assert sorted(ensure_topics(bootstrap, ["t.a", "t.b"], 2)) == ["t.a", "t.b"]
        assert ensure_topics(bootstrap, ["t.a", "t.b"], 2) == []

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            for i in range(3):
                producer.send("t.a", key=b"k", value=f"m{i}".encode())
            producer.flush(timeout=30)
        finally:
            producer.close()

        assert broker.stop() is True
        assert not broker.status().running
        assert broker.status().pid is None
        assert broker.stop() is False

        assert broker.start() is True
        assert {"t.a", "t.b"} <= _topics(bootstrap)
        assert ensure_topics(bootstrap, ["t.a", "t.b"], 2) == []
        # One key, so one partition, so the order is kept.
        assert read_all(bootstrap, "t.a") == [b"m0", b"m1", b"m2"]
    finally:
        broker.stop()
    assert not broker.status().running


def test_the_tables_changelogs_are_made_whole_before_the_worker_joins(
    kafka: LocalKafka, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Faust creating them itself while joining raced the metadata: a changelog with no leader
    # yet counted 0 partitions, and the first table write failed with PartitionsMismatch.
    settings = make_settings(kafka_partitions=3)
    pipeline = create_pipeline(worker_config(settings))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    agent.register(pipeline, AlertEngine(default_ruleset(-0.3, 3, 3600.0), outbox, []))
    names = changelog_topics(pipeline)
    assert names == [f"{settings.app_id}-alert_rule_state-changelog"]

    created = ensure_topics(kafka.bootstrap, names, 3, configs={"cleanup.policy": "compact"})
    assert created == names
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        assert consumer.partitions_for_topic(names[0]) == {0, 1, 2}
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, names[0])])
    finally:
        consumer.close()
        admin.close()
    assert "compact" in repr(described)


@pytest.mark.integration
def test_a_stopped_broker_keeps_its_pid_but_does_not_answer(kafka: LocalKafka) -> None:
    pid = kafka.status().pid
    assert pid is not None and kafka.answers()
    os.kill(pid, signal.SIGSTOP)  # a hung JVM: the port still accepts, nothing replies
    try:
        assert kafka.status().running
        assert not kafka.answers(timeout=2.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert kafka.answers(timeout=30.0)


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_a_node_alone_votes_for_itself_and_keeps_one_replica(tmp_path: Path) -> None:
    props = _properties(server_properties("127.0.0.1", 9092, 9093, tmp_path))
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_a_cluster_node_names_the_three_voters_and_replicates_three_times(tmp_path: Path) -> None:
    text = server_properties("127.0.0.1", 9094, 9095, tmp_path, 2, (9093, 9095, 9097))
    props = _properties(text)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert props["default.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"


def test_cluster_nodes_each_have_a_folder_and_ports_of_their_own(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, [(9092, 9093), (9094, 9095), (9096, 9097)], heap="384m")
    assert [node.home for node in cluster.nodes] == [
        tmp_path.resolve() / f"broker-{i}" for i in (1, 2, 3)
    ]
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert LocalCluster(tmp_path, [(9092, 9093)]).nodes[0].home == tmp_path.resolve()
    assert started_size(tmp_path) == 1
    with pytest.raises(ConfigError, match="two ports of its own"):
        LocalCluster(tmp_path, [(9092, 9093), (9093, 9094)])
