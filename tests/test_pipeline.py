"""The whole pipeline on the real broker and chDB: a recorded feed in, rows and an alert out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.serializer import JsonSerializer

from infra.errors import SurveilError
from infra.settings import Settings
from ingest.base import collect
from ingest.rss import RssSource
from surveil.compose.runtime import WorkerProcess, open_warehouse
from surveil.demo.receiver import WebhookReceiver
from surveil.demo.run import processed, run_demo
from tests.feeds import publish_feed, rewind

pytestmark = pytest.mark.integration

MSFT_FEED = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"
EMPTY_ITEM = b"<item><pubDate>Fri, 27 Oct 2017 09:00:00 -0400</pubDate></item>\n  </channel>"


def _feed_with_bad_entry(shared_dir: Path, tmp_path: Path) -> Path:
    """The recorded feed with one entry that has no title, body, link or id appended."""
    raw = (shared_dir / MSFT_FEED).read_bytes()
    path = tmp_path / "feed_with_bad_entry.xml"
    path.write_bytes(raw.replace(b"</channel>", EMPTY_ITEM, 1))
    return path


def _run_once(
    settings: Settings, feed: Path, webhook: str, log: Path, publish: bool = True
) -> dict[str, int]:
    worker = WorkerProcess(settings, {"SURVEIL_ALERT_SLACK_WEBHOOK": webhook}, log)
    worker.start()
    stopped = False
    try:
        batch = publish_feed(settings, feed) if publish else collect(RssSource("x", str(feed)))
        scored = sum(len(d.tickers) for d in batch.documents)
        worker.wait_until(processed(len(batch.documents), scored), timeout=180)
        stats = worker.wait_until(
            lambda s: (
                s.get("store.alerts.seen", 0)
                >= s.get("alerts.firing", 0) + s.get("alerts.resolved", 0)
            ),
            timeout=60,
        )
        stopped = True
        assert worker.stop() == 0, log.read_text()[-3000:]  # a clean, graceful stop
        return stats
    finally:
        if not stopped:
            worker.stop()


def _dlq(settings: Settings) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        f"{settings.topic_prefix}docs.dlq",
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        group_id=None,
        value_deserializer=JsonSerializer(),
    )
    try:
        return [message.value for message in consumer]
    finally:
        consumer.close()


def test_recorded_feed_lands_once_alerts_once_and_dead_letters_the_bad_entry(
    make_settings: Callable[..., Settings], shared_dir: Path, tmp_path: Path
) -> None:
    # One partition keeps arrival in publication order, so the window sees one breach
    # episode: MSFT's 2-day mean falls to -0.167 over 3 documents, then recovers to 0.
    settings = make_settings(
        kafka_partitions=1, signal_window_s=2 * 86_400, alert_threshold=-0.15, alert_min_docs=3
    )
    feed = _feed_with_bad_entry(shared_dir, tmp_path)
    expected = {d.doc_id: d.tickers for d in collect(RssSource("x", str(feed))).documents}
    assert len(expected) == 30

    with WebhookReceiver() as receiver:
        _run_once(settings, feed, receiver.url, tmp_path / "worker0.log")
        rewind(settings)  # the second run is delivered every record again
        _run_once(settings, feed, receiver.url, tmp_path / "worker1.log", publish=False)

    warehouse = open_warehouse(settings)
    try:
        db = settings.clickhouse_database
        docs = warehouse.rows(f"SELECT doc_id, tickers FROM {db}.documents")
        scores = warehouse.rows(f"SELECT doc_id, ticker FROM {db}.scores")
        rollup = warehouse.rows(f"SELECT sum(documents) FROM {db}.sentiment_1m")
        alerts = warehouse.rows(f"SELECT alert_id, ticker, state FROM {db}.alerts")
    finally:
        warehouse.close()

    assert sorted(d for d, _ in docs) == sorted(expected)  # every entry, once
    assert {d: tuple(t) for d, t in docs} == expected
    assert all("MSFT" in tickers for tickers in expected.values())
    pairs = sorted((d, t) for d, tickers in expected.items() for t in tickers)
    assert sorted(scores) == pairs
    assert rollup == [(len(pairs),)]

    firing = [p for p in receiver.received if p["text"].startswith("[FIRING]")]
    resolved = [p for p in receiver.received if p["text"].startswith("[RESOLVED]")]
    assert len(firing) == 1 and "MSFT" in firing[0]["text"]
    assert len(resolved) == 1 and "MSFT" in resolved[0]["text"]
    assert {(ticker, state) for _, ticker, state in alerts} == {
        ("MSFT", "firing"),
        ("MSFT", "resolved"),
    }
    assert len({alert_id for alert_id, _, _ in alerts}) == 1

    dead = _dlq(settings)
    assert [d["reason"] for d in dead] == ["empty_entry"]  # the ingest's, sent once
    assert "neither a title nor a body" in str(dead[0]["detail"])


def test_the_worker_scores_with_a_trained_model_when_one_is_configured(
    make_settings: Callable[..., Settings], tiny_artifact: Path
) -> None:
    settings = make_settings(model=str(tiny_artifact), precision="fp32")
    result = run_demo(settings, timeout=180, echo=lambda *_: None)
    assert result.documents == 9 and result.scored == 9
    warehouse = open_warehouse(settings)
    try:
        versions = warehouse.rows("SELECT DISTINCT model_version FROM {db}.scores")
        events = warehouse.rows("SELECT count() FROM {db}.scores WHERE p_neutral < 1")
    finally:
        warehouse.close()
    assert versions == [(tiny_artifact.name,)]
    assert events == [(9,)]  # probabilities from the model, not the lexicon's counts


def test_a_wait_that_times_out_names_the_counters_and_logs_every_thread(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = WorkerProcess(make_settings(), {}, log)
    worker.start()
    try:
        with pytest.raises(SurveilError, match=r"within 15 s \(counted: .*\); its log") as caught:
            worker.wait_until(lambda _: False, timeout=15)
    finally:
        worker.stop()
    assert str(log) in str(caught.value)
    dump = log.read_text()
    # mode's handler once the event loop runs (threads and tasks), faulthandler's before
    assert "THREAD MainThread" in dump or "Current thread 0x" in dump


def test_the_demo_fails_when_an_agent_dies(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEIL_TEST_CRASH_CLASSIFY", "1")  # the model raises on every batch
    settings = make_settings()
    with pytest.raises(SurveilError, match="the worker exited with 1"):
        run_demo(settings, timeout=120, echo=lambda *_: None, worker_module="tests.faulty_worker")
