"""Run the demo: broker and worker if needed, the sample feed through the Ingestor, results."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import SurveilError
from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.base import Source
from ingest.rss import RssSource
from streams.topics import ALL_TOPICS, with_prefix
from surveil.compose.ingestion import open_ingestor
from surveil.compose.runtime import WorkerProcess, is_local, local_kafka, open_warehouse, reachable
from surveil.demo.receiver import WebhookReceiver

SAMPLE_FEED = Path(__file__).parent.parent / "samples" / "demo_feed.xml"
# The latency an alert's text gives (alerts.format.duration: "274d 6h", "2h 05m", "12s").
_LATENCY = re.compile(r"published to alert:? (?P<lag>\d+[dhms](?: \d+[hms])?)")

SCORES_BY_TICKER = """
SELECT ticker, count() AS documents, round(avg(score), 3) AS mean_score,
       countIf(label = 'negative') AS negative, max(published_at) AS last_published
FROM {db}.scores FINAL
GROUP BY ticker
ORDER BY mean_score
"""
ALERTS_BY_ID = """
SELECT ticker, rule, argMax(state, updated_at) AS state, any(severity) AS severity,
       round(argMax(value, updated_at), 3) AS value, any(threshold) AS threshold,
       min(fired_at) AS fired_at
FROM {db}.alerts
GROUP BY alert_id, ticker, rule
ORDER BY fired_at
"""


@dataclass
class DemoResult:
    """What a demo run did and found."""

    documents: int
    rejected: int
    scored: int
    stats: dict[str, int]
    scores: tuple[list[str], list[tuple[Any, ...]]]
    alerts: tuple[list[str], list[tuple[Any, ...]]]
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    started_broker: bool = False


def processed(expected_docs: int, expected_scored: int) -> Any:
    """A predicate on worker counters: every document and score went through every stage."""

    def done(stats: dict[str, int]) -> bool:
        alerts = stats.get("alerts.firing", 0) + stats.get("alerts.resolved", 0)
        return (
            stats.get("store.documents.seen", 0) >= expected_docs
            and stats.get("store.scores.seen", 0) >= expected_scored
            and stats.get("alerts.seen", 0) >= expected_scored
            and stats.get("store.alerts.seen", 0) >= alerts
        )

    return done


@contextlib.contextmanager
def _webhook(settings: Settings) -> Iterator[WebhookReceiver | None]:
    if settings.alert_slack_webhook is not None:
        yield None
        return
    with WebhookReceiver() as receiver:
        yield receiver


def run_demo(
    settings: Settings,
    sources: list[Source] | None = None,
    timeout: float = 300.0,
    echo: Any = print,
    worker_module: str = "surveil",
) -> DemoResult:
    """Run broker (if needed), worker and one ingest; return what landed in ClickHouse.

    Raises:
        SurveilError: the worker died (an agent crashed), a stage is stalled on a failing
            write, or the work did not finish within ``timeout`` seconds.
    """
    broker = local_kafka(settings)
    started = False
    if is_local(settings) and not reachable(settings.bootstrap_servers):
        echo(f"starting the local Kafka broker on {broker.bootstrap} ...")
        started = broker.start()
    try:
        topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
        ensure_topics(settings.bootstrap_servers, topics, settings.kafka_partitions)
        open_warehouse(settings).close()  # migrate now; the worker owns chDB from here on
        sources = sources or [
            RssSource("demo-wire", str(SAMPLE_FEED), body_max_chars=settings.body_max_chars)
        ]
        with _webhook(settings) as receiver:
            env = {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url} if receiver else {}
            log_file = settings.state_dir / "logs" / "worker.log"
            worker = WorkerProcess(settings, env, log_file, module=worker_module)
            worker.start()
            try:
                docs, rejected, seen = _ingest(settings, sources)
                echo(
                    f"ingested {docs} new documents ({seen} seen before, {rejected} rejected "
                    "to docs.dlq); waiting for the worker ..."
                )
                classified = worker.wait_until(
                    lambda s: s.get("classify.documents", 0) >= docs, timeout
                )
                scored = classified.get("classify.scored", 0)
                worker.wait_until(processed(docs, scored), timeout)
                stats = _settle(worker)
                _healthy(worker)
            finally:
                worker.stop(timeout=30)
            posts = list(receiver.received) if receiver else []
        warehouse = open_warehouse(settings, migrate=False)
        try:
            scores = warehouse.query(SCORES_BY_TICKER)
            alerts = warehouse.query(ALERTS_BY_ID)
        finally:
            warehouse.close()
        return DemoResult(docs, rejected, scored, stats, scores, alerts, posts, started)
    finally:
        if started:
            echo("stopping the local Kafka broker (data stays in the state folder)")
            broker.stop()


def _ingest(settings: Settings, sources: list[Source]) -> tuple[int, int, int]:
    """Run each source once through the Ingestor (linking, dedup, checkpoint, dead letters);
    return the new documents, the rejects and the documents seen by an earlier run."""
    with open_ingestor(settings, []) as ingestor:
        results = [ingestor.run(source) for source in sources]
    return (
        sum(r.documents for r in results),
        sum(r.rejected for r in results),
        sum(r.duplicates for r in results),
    )


def webhook_line(post: dict[str, Any], *, sample: bool) -> str:
    """Return a received post's text; for the bundled sample, its latency is called its age.

    The sample's documents carry fixed dates, long past: "published to alert 274d 6h" would
    measure the sample's age, not the pipeline, so it is said as "sample published ... ago".
    """
    text = str(post.get("text", ""))
    return _LATENCY.sub(r"sample published \g<lag> ago", text) if sample else text


def _healthy(worker: WorkerProcess) -> None:
    """Fail unless the worker runs and none of its stages is stuck on a failing write."""
    stalled = {
        name: stage.get("last_error", "")
        for name, stage in worker.agents().items()
        if stage.get("state") != "running"
    }
    if worker.pid is None or stalled:
        detail = "; ".join(f"{n}: {e}" for n, e in stalled.items()) or "the worker exited"
        msg = f"the worker is not healthy ({detail}); see {worker.log_file}"
        raise SurveilError(msg)


def _settle(worker: WorkerProcess, quiet_s: float = 2.0, limit_s: float = 30.0) -> dict[str, int]:
    """Wait until the worker's counters stop moving (alerts trail the scores)."""
    last = worker.stats()
    still_since = time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = worker.stats()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            break
    return last
