"""Replays on the real broker and chDB: selection by publication or ingestion time, empty
ranges, ranges that end in the future, and `runs diff` over series and alerts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from infra.broker import free_port
from infra.errors import ConfigError
from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.producer import DocumentProducer
from streams.records import Document
from streams.topics import DOCS_RAW
from surveil.cli import cli
from surveil.compose.runtime import settings_env
from surveil.replay.run import replay
from surveil.replay.runs import list_runs, open_run

T0 = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
STEP = timedelta(minutes=70)  # ten documents: 11:00 to 21:30
NEGATIVE = "Microsoft shares plunge after lawsuit and losses"
POSITIVE = "Microsoft reports strong gains and record profit"
pytestmark = pytest.mark.integration


def documents() -> list[Document]:
    """Five negative MSFT documents, then five positive ones: an alert fires, then resolves."""
    return [
        Document(
            doc_id=f"replay-doc-{i:02d}",
            source="test",
            kind="news",
            title=NEGATIVE if i < 5 else POSITIVE,
            published_at=T0 + i * STEP,
            fetched_at=T0 + i * STEP,
            tickers=("MSFT",),
        )
        for i in range(10)
    ]


def publish(make_settings: Callable[..., Settings], partitions: int) -> Settings:
    """Settings whose docs.raw holds the ten documents, ingested now (not when published)."""
    settings = make_settings(
        kafka_partitions=partitions, signal_window_s=2 * 86_400, alert_threshold=-0.15
    )
    topic = f"{settings.topic_prefix}{DOCS_RAW}"
    ensure_topics(settings.bootstrap_servers, [topic], partitions)
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    try:
        producer.publish(documents())
    finally:
        producer.close()
    return settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """The documents spread over three partitions."""
    return publish(make_settings, 3)


@pytest.fixture
def ordered(make_settings: Callable[..., Settings]) -> Settings:
    """One partition: Kafka order is publication order, so alert episodes are known."""
    return publish(make_settings, 1)


def invoke(settings: Settings, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={**settings_env(settings), **env})


def test_replay_selects_by_publication_time_and_paces_by_it(settings: Settings) -> None:
    clock = time.monotonic()
    # 11:00 to 16:50 by publication: six documents, paced over 350 min / 10000 = 2.1 s.
    report = replay(settings, "by_pub", T0, T0 + 6 * STEP, speed="10000x", batch=2)
    assert time.monotonic() - clock >= 2.0
    assert (report.documents, report.scores) == (6, 6)
    run = open_run(settings, "by_pub")
    try:
        published = run.rows("SELECT published_at FROM {db}.documents ORDER BY published_at")
    finally:
        run.close()
    assert [p.replace(tzinfo=UTC) for (p,) in published] == [T0 + i * STEP for i in range(6)]


def test_replay_by_ingestion_time_keeps_the_old_selection(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"10 documents published 2026-03-02 11:00 to 21:30"):
        replay(settings, "old", T0, T0 + 6 * STEP, by="ingested")
    now = datetime.now(UTC)
    assert replay(settings, "old", now - timedelta(hours=1), now, by="ingested").documents == 10


def test_an_empty_range_exits_1_saying_what_docs_raw_holds(settings: Settings) -> None:
    result = invoke(
        settings, "replay", "--from", "2026-03-03", "--to", "2026-03-10", "--run-id", "x"
    )
    assert result.exit_code == 1, result.output
    held = (
        f"no documents published in [2026-03-03, 2026-03-10) UTC: {settings.topic_prefix}"
        "docs.raw holds 10 documents published 2026-03-02 11:00 to 21:30 UTC, ingested "
    )
    assert held in result.stderr, result.output
    assert list_runs(settings) == []  # no run left behind for nothing


def test_runs_diff_shows_buckets_one_run_lacks_and_its_alerts(ordered: Settings) -> None:
    settings = ordered
    day = ["--from", "2026-03-02", "--to", "2026-03-03"]
    assert invoke(settings, "replay", *day, "--run-id", "full").exit_code == 0
    half = ["--from", "2026-03-02", "--to", "2026-03-02T17:00"]
    assert invoke(settings, "replay", *half, "--run-id", "half").exit_code == 0
    diff = invoke(settings, "runs", "diff", "full", "half")
    assert diff.exit_code == 1, diff.output
    assert "nan" not in diff.output, diff.output
    # Both have the buckets 11:00 .. 16:00; only the full day has 18:00 .. 21:00.
    assert "10 (ticker, bucket) rows compared at 1h: 4 differ (4 only in a, 0 only in b)" in (
        diff.output
    )
    assert "max |mean difference| 0.000000 over the 6 buckets both have" in diff.output
    assert "only in a" in diff.output
    assert "alert states: 2 in a, 1 in b; 1 only in a, 0 only in b" in diff.output, diff.output
    assert "resolved" in diff.output


def test_runs_diff_exits_1_when_only_the_alerts_differ(ordered: Settings) -> None:
    settings = ordered
    day = ["replay", "--from", "2026-03-02", "--to", "2026-03-03"]
    assert invoke(settings, *day, "--run-id", "alerting").exit_code == 0
    quiet = invoke(settings, *day, "--run-id", "quiet", SURVEIL_ALERT_THRESHOLD="-0.9")
    assert quiet.exit_code == 0, quiet.output
    diff = invoke(settings, "runs", "diff", "alerting", "quiet")
    assert ": 0 differ" in diff.output, diff.output
    assert "alert states: 2 in a, 0 in b; 2 only in a, 0 only in b" in diff.output
    assert diff.exit_code == 1


def test_a_range_ending_in_the_future_is_said_to_be_unrepeatable(settings: Settings) -> None:
    now = datetime.now(UTC)
    later = ["--by", "ingested", "--from", (now - timedelta(hours=1)).isoformat()]
    future = invoke(settings, "replay", *later, "--to", (now + timedelta(hours=1)).isoformat(),
                    "--run-id", "open")  # fmt: skip
    assert future.exit_code == 0, future.output
    assert "the range ends in the future" in future.stderr
    closed = invoke(settings, "replay", *later, "--to", now.isoformat(), "--run-id", "closed")
    assert closed.exit_code == 0 and "in the future" not in closed.stderr, closed.output
    diff = invoke(settings, "runs", "diff", "closed", "open")
    assert diff.exit_code == 0, diff.output  # the same ten documents so far
    assert "run open (b) read a range ending" in diff.stderr, diff.output
    assert "a new replay of that range will differ" in diff.stderr


def test_replay_without_a_broker_fails_at_once(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(kafka_broker=f"kafka://127.0.0.1:{free_port()}")
    clock = time.monotonic()
    result = invoke(settings, "replay", "--from", "2026-03-02", "--to", "2026-03-03",
                    "--run-id", "nobroker")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "no Kafka broker answers" in result.stderr, result.output
    assert time.monotonic() - clock < 5
