"""Run a time range of docs.raw through the pipeline's steps into a run's own database.

The steps are the worker's: `streams.steps.score`, a `streams.steps.Sink` (the run
database's `streams.store.Store`), and `alerts.engine.AlertEngine.observe` and ``flush``
with the rules and router of the worker, on publication time as the router's clock. The
only differences are the source (a Kafka range, `surveil.replay.select`) and the sinks:
nothing goes back to Kafka and nothing to a live channel, alerts land in a
`alerts.dryrun.DryRunOutbox` with a ``dry-run`` delivery and in the run's ``alerts`` table.
The same range, model and settings give the same documents, scores, rollups and alerts
every time, as long as the range lies in the past.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from alerts.base import CHANNELS
from alerts.dryrun import DryRunOutbox
from alerts.engine import AlertEngine
from infra.db import Warehouse, connect
from infra.errors import ConfigError
from infra.settings import Settings
from models.base import Classifier
from streams import steps
from streams.records import Alert, Document, utcnow
from streams.store import Store
from streams.topics import DOCS_RAW
from surveil.compose.runtime import alert_ruleset, load_model
from surveil.quant.times import utc
from surveil.replay.runs import has_run, moment, record_run, run_database, runs_dsn
from surveil.replay.select import SELECTIONS, Selection, nothing_selected, read_range, select


@dataclass
class RunReport:
    """What a replay did."""

    run_id: str
    database: str
    model_version: str
    documents: int = 0
    scores: int = 0
    alerts: int = 0
    rejected: int = 0
    seconds: float = 0.0
    alert_list: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def future_range_note(end: datetime, now: datetime) -> str | None:
    """Say why a range ending after ``now`` cannot be replayed the same way later."""
    if utc(end) <= now:
        return None
    return (
        f"the range ends in the future ({moment(utc(end))} UTC): documents still arriving "
        "will make a later replay differ"
    )


def parse_speed(value: str) -> float | None:
    """Read ``max`` (as fast as possible: None) or ``Nx`` (N times event time).

    Raises:
        ConfigError: neither form.
    """
    if value == "max":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)x", value)
    if match is None or float(match.group(1)) <= 0:
        msg = f"speed {value!r}: use max or a factor such as 10x or 3600x"
        raise ConfigError(msg)
    return float(match.group(1))


def replay(
    settings: Settings,
    run_id: str,
    start: datetime,
    end: datetime,
    *,
    by: Selection = "published",
    model: str | None = None,
    speed: str = "max",
    batch: int = 256,
    progress: bool = False,
    replace: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Replay the documents of docs.raw in [start, end) into the run's database.

    Args:
        by: ``published`` selects by the documents' publication time, ``ingested`` by their
            Kafka timestamps.

    Raises:
        ConfigError: a bad run id, range, selection or speed, a range that selects nothing
            (the message says what docs.raw holds), or the run exists (and not ``replace``).
        BrokerError: Kafka could not be read.
    """
    started, clock = utcnow(), time.monotonic()
    start, end = utc(start), utc(end)
    _check(start, end, by)
    pace = _pacer(parse_speed(speed), sleep)
    classifier = load_model(settings, model)
    warehouse = Warehouse(connect(runs_dsn(settings)), run_database(settings, run_id))
    try:
        exists = has_run(warehouse, run_id)
        if exists and not replace:
            msg = (
                f"run {run_id} exists already ({warehouse.database}): pick another "
                "--run-id, or --replace it"
            )
            raise ConfigError(msg)
        report = RunReport(run_id, warehouse.database, classifier.version)
        report.notes += filter(None, [future_range_note(end, started)])
        docs, report.rejected = _selected(settings, start, end, by)
        if exists:
            warehouse.command("DROP DATABASE {db}")
        warehouse.migrate()
        row = {"range_from": start, "range_to": end, "speed": speed, "started_at": started}
        row["source_topic"] = f"{settings.topic_prefix}{DOCS_RAW}"
        record_run(warehouse, _row(report, row), "running")
        engine, outbox = dry_run_engine(settings)
        run_steps(docs, classifier, Store(warehouse), engine, outbox, report, batch, pace, progress)
        report.seconds = time.monotonic() - clock
        record_run(warehouse, _row(report, row), "finished")
    finally:
        warehouse.close()
    return report


def dry_run_engine(settings: Settings) -> tuple[AlertEngine, DryRunOutbox]:
    """The worker's alert engine (rules, router) with an outbox that sends nothing."""
    outbox = DryRunOutbox()
    return AlertEngine(alert_ruleset(settings), outbox, CHANNELS), outbox


def run_steps(
    docs: Sequence[tuple[int, Document]],
    classifier: Classifier,
    sink: steps.Sink,
    engine: AlertEngine,
    outbox: DryRunOutbox,
    report: RunReport,
    batch: int = 256,
    pace: Callable[[int], None] = lambda _clock: None,
    progress: bool = False,
) -> None:
    """Score, store, evaluate and route documents in batches, in their order.

    Args:
        docs: the documents, each with its pacing clock (ms).
        pace: waits before each batch, given how far (ms) its last document's clock is
            from the first document's.
    """
    states: dict[str, dict[str, Any]] = {}
    now = datetime.min.replace(tzinfo=UTC)
    with tqdm(total=len(docs), desc="replay", unit="doc", disable=not progress) as bar:
        for i in range(0, len(docs), batch):
            chunk = docs[i : i + batch]
            pace(chunk[-1][0] - docs[0][0])
            documents = [doc for _, doc in chunk]
            scored = steps.score(classifier, documents)
            report.documents += sink.write_documents(documents)
            report.scores += sink.write_scores(scored)
            for rec in scored:
                # The router's clock: the newest publication time so far, as a live router's
                # wall clock, never going back when documents arrive out of order.
                now = max(now, rec.published_at)
                before = states.get(rec.ticker, {})
                states[rec.ticker] = engine.observe(before, rec, now)
                engine.flush(now)
            _store_alerts(sink, outbox, report)
            bar.update(len(chunk))
    if docs:
        # What was still waiting (group wait, interval) at the end of the range goes out.
        route = engine.ruleset.route
        last = max(doc.published_at for _, doc in docs)
        engine.flush(last + timedelta(seconds=route.group_wait_s + route.group_interval_s + 1))
        _store_alerts(sink, outbox, report)


def _store_alerts(sink: steps.Sink, outbox: DryRunOutbox, report: RunReport) -> None:
    alerts = outbox.take()
    report.alerts += sink.write_alerts(alerts)
    report.alert_list += alerts


def _check(start: datetime, end: datetime, by: str) -> None:
    if end <= start:
        msg = f"empty range: {start.isoformat()} is not before {end.isoformat()}"
        raise ConfigError(msg)
    if by not in SELECTIONS:
        msg = f"select by {by!r}: use published or ingested"
        raise ConfigError(msg)


def _selected(
    settings: Settings, start: datetime, end: datetime, by: Selection
) -> tuple[list[tuple[int, Document]], int]:
    topic = f"{settings.topic_prefix}{DOCS_RAW}"
    bootstrap = settings.bootstrap_servers
    span = (None, None) if by == "published" else (start, end)
    records = read_range(bootstrap, topic, *span)
    docs, rejected = select(records, start, end, by)
    if not docs:
        every = records if by == "published" else read_range(bootstrap, topic)
        raise ConfigError(nothing_selected(topic, start, end, by, every))
    return docs, rejected


def _pacer(factor: float | None, sleep: Callable[[float], None]) -> Callable[[int], None]:
    """Nx: a batch whose last document is ``ms`` after the first is due ms / N after start."""
    began: list[float] = []

    def pace(ms: int) -> None:
        if factor is None:
            return
        began[:] = began or [time.monotonic()]
        wait = ms / 1000 / factor - (time.monotonic() - began[0])
        if wait > 0:
            sleep(wait)

    return pace


def _row(report: RunReport, row: dict[str, Any]) -> dict[str, Any]:
    counts = ("documents", "scores", "alerts", "rejected")
    return {
        **row,
        "run_id": report.run_id,
        "model_version": report.model_version,
        **{c: getattr(report, c) for c in counts},
    }
