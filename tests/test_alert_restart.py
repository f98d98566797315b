"""A worker stopped during an alert's group wait, then restarted: exactly one notification.

A real worker (real broker, real chDB) takes scored documents that make a rule fire and is
stopped, with SIGKILL or SIGTERM, after their offsets were committed but before the group
wait ended. The next worker must notify the alert once, and record it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.serializer import DefaultSerializer, JsonSerializer

from infra.settings import Settings
from streams.records import Scored
from surveil.compose.runtime import WorkerProcess, open_warehouse
from surveil.demo.receiver import WebhookReceiver

pytestmark = pytest.mark.integration

GROUP_WAIT_S = 40.0
DOCS = 5


def _scored(n: int, at: datetime) -> Scored:
    return Scored.model_validate(
        {
            "doc_id": f"acme-{n}",
            "ticker": "ACME",
            "kind": "news",
            "source": "wire",
            "title": f"ACME story {n}",
            "url": f"https://example.com/acme/{n}",
            "published_at": at,
            "fetched_at": at,
            "label": "negative",
            "p_negative": 0.85,
            "p_neutral": 0.1,
            "p_positive": 0.05,
            "score": -0.8,
            "relevance": 1.0,
            "model_version": "fixed-1",
            "scored_at": at,
        }
    )


def _publish_scored(settings: Settings) -> None:
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        key_serializer=DefaultSerializer(),
        value_serializer=JsonSerializer(),
    )
    try:
        now = datetime.now(UTC)
        for n in range(DOCS):
            rec = _scored(n, now - timedelta(minutes=DOCS - n))
            producer.send(f"{settings.topic_prefix}docs.scored", rec.to_json(), key=b"ACME")
        producer.flush()
    finally:
        producer.close()


def _committed(settings: Settings) -> int:
    """The worker group's committed offset on docs.scored (one partition)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    try:
        return consumer.committed(TopicPartition(f"{settings.topic_prefix}docs.scored", 0)) or 0
    finally:
        consumer.close()


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_a_restart_during_group_wait_notifies_exactly_once(
    make_settings: Callable[..., Settings], tmp_path: Path, how: str
) -> None:
    settings = make_settings(kafka_partitions=1, alert_group_wait_s=GROUP_WAIT_S)
    with WebhookReceiver() as slack:
        env = {"SURVEIL_ALERT_SLACK_WEBHOOK": slack.url}
        first = WorkerProcess(settings, env, tmp_path / "first.log")
        first.start()
        try:
            first.wait_until(lambda s: True, timeout=180)  # its web server is up
            _publish_scored(settings)
            first.wait_until(lambda s: s.get("alerts.conditions", 0) >= DOCS - 2, timeout=180)
            deadline = time.monotonic() + 60
            while _committed(settings) < DOCS and time.monotonic() < deadline:
                time.sleep(0.5)  # every document acknowledged: none comes back after a restart
            assert _committed(settings) == DOCS
            assert slack.received == [], "the group wait ended before the stop: test too slow"
        finally:
            stopped = first.kill() if how == "sigkill" else first.stop()
        assert stopped == (-9 if how == "sigkill" else 0)
        assert slack.received == []

        second = WorkerProcess(settings, env, tmp_path / "second.log")
        second.start()
        try:
            second.wait_until(lambda s: s.get("alerts.delivered", 0) >= 1, timeout=240)
            second.wait_until(lambda s: s.get("store.alerts.seen", 0) >= 1, timeout=120)
            time.sleep(3)  # room for a second notification, should there be one
            assert second.stop() == 0
        finally:
            second.stop()
        posts = [p["text"] for p in slack.received]

    assert len(posts) == 1 and posts[0].startswith("[FIRING]") and "ACME" in posts[0]
    warehouse = open_warehouse(settings)
    try:
        alerts = warehouse.rows("SELECT ticker, state FROM {db}.alerts")
    finally:
        warehouse.close()
    assert alerts == [("ACME", "firing")]
