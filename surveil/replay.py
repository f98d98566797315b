"""Replay a time range of docs.raw into a run's own namespace, for backtests.

A replay selects documents by publication time (``published``, the default: it reads every
partition from its beginning to its end offsets at the start and keeps the documents whose
``published_at`` is in the range) or by Kafka timestamp (``ingested``: ``offsets_for_times``
gives the first offset of the range in every partition). Either way it keeps one fixed order
(Kafka timestamp, partition, offset) and runs the functions the agents run:
`streams.classify.score_documents`, the idempotent `streams.store.Store` writers, and the
alert rules and router of the worker (with publication time as the router's clock). Nothing
goes back to Kafka and nothing to a live channel: alerts get a ``dry-run`` delivery and are
recorded in the run's own ``alerts`` table. The same range, model and settings give the same
documents, scores, rollups and alerts every time, as long as the range lies in the past.

Where a run lives: in its own database, ``<database>_run_<run_id>``. With embedded chDB the
run databases sit in a separate folder (``<state_dir>/runs/clickhouse``), because the live
worker owns the main one; with a ClickHouse server they sit beside the live database.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.serializer import DefaultSerializer, JsonSerializer
from tqdm import tqdm

from alerts.evaluate import Evaluator
from alerts.router import Router
from infra.db import Warehouse, connect
from infra.errors import BrokerError, ConfigError, DecodeError
from infra.settings import Settings
from models.base import Classifier
from models.registry import Runtime, load_classifier
from streams.classify import score_documents
from streams.records import Alert, Delivery, Document, utcnow
from streams.store import Store
from streams.topics import DOCS_RAW
from surveil.quant.times import DEFAULT_FREQ, parse_freq, utc
from surveil.runtime import alert_ruleset

log = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
DRY_RUN = Delivery(channel="dry-run", ok=True, detail="replay: recorded, never sent")
Selection = Literal["published", "ingested"]
SELECTIONS: tuple[Selection, ...] = ("published", "ingested")
# One alert state of one episode: an episode fires at one event time in both runs, while its
# value and window follow the documents each run saw last.
ALERT_KEY = ("ticker", "rule", "state", "fired_at")


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
        f"the range ends in the future ({_moment(utc(end))} UTC): documents still arriving "
        "will make a later replay differ"
    )


def run_database(settings: Settings, run_id: str) -> str:
    """The database name of a run.

    Raises:
        ConfigError: the run id is not 1-64 letters, digits or underscores.
    """
    if not _RUN_ID.match(run_id):
        msg = f"run id {run_id!r}: use 1-64 letters, digits or underscores"
        raise ConfigError(msg)
    return f"{settings.clickhouse_database}_run_{run_id}"


def runs_dsn(settings: Settings) -> str:
    """Where run databases live: a separate chDB folder, or the same server."""
    if settings.dsn.startswith("chdb:"):
        return f"chdb://{(settings.state_dir / 'runs' / 'clickhouse').resolve()}"
    return settings.dsn


def open_run(settings: Settings, run_id: str) -> Warehouse:
    """Open (and migrate) a run's database."""
    warehouse = Warehouse(connect(runs_dsn(settings)), run_database(settings, run_id))
    warehouse.migrate()
    return warehouse


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    """Return every run's row (newest first), from each run database."""
    warehouse = Warehouse(connect(runs_dsn(settings)), settings.clickhouse_database)
    try:
        prefix = f"{settings.clickhouse_database}_run_"
        names = [
            str(r[0])
            for r in warehouse.rows(
                "SELECT name FROM system.databases WHERE startsWith(name, {p:String})",
                {"p": prefix},
            )
        ]
        runs: list[dict[str, Any]] = []
        for name in names:
            columns, rows = warehouse.query(f"SELECT * FROM {name}.runs FINAL")  # noqa: S608
            runs += [dict(zip(columns, row, strict=True)) for row in rows]
    finally:
        warehouse.close()
    return sorted(runs, key=lambda r: r["started_at"], reverse=True)


@dataclass
class RunDiff:
    """How two runs differ: their series, their alerts, and why a rerun may differ."""

    series: pd.DataFrame
    alerts_only_a: list[tuple[Any, ...]]
    alerts_only_b: list[tuple[Any, ...]]
    alert_counts: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        """Whether the series or the alerts differ."""
        return bool(self.series["differs"].any()) or bool(self.alerts_only_a or self.alerts_only_b)


def diff_runs(settings: Settings, run_a: str, run_b: str, freq: str = DEFAULT_FREQ) -> pd.DataFrame:
    """Compare two runs' series per (ticker, bucket); see `compare_runs`."""
    return compare_runs(settings, run_a, run_b, freq).series


def compare_runs(settings: Settings, run_a: str, run_b: str, freq: str = DEFAULT_FREQ) -> RunDiff:
    """Compare two runs: documents and mean score per (ticker, bucket), and alert states.

    In the series, ``present`` is ``both``, ``a`` or ``b`` (the one run that has the bucket;
    the other's mean is NaN). Rows where the runs differ come first (buckets only one run has,
    then the largest absolute mean difference). Alert states compare by (ticker, rule, state,
    fired_at).

    Raises:
        ConfigError: a run does not exist.
    """
    step = parse_freq(freq).minutes
    warehouse = Warehouse(connect(runs_dsn(settings)), settings.clickhouse_database)
    frames, alerts, notes = [], [], []
    try:
        for label, run_id in (("a", run_a), ("b", run_b)):
            database = run_database(settings, run_id)
            exists = warehouse.rows(
                "SELECT 1 FROM system.databases WHERE name = {n:String}", {"n": database}
            )
            if not exists:
                msg = f"no run {run_id} (database {database})"
                raise ConfigError(msg)
            sql = f"""
                SELECT ticker, toStartOfInterval(minute, INTERVAL {step} MINUTE, 'UTC') AS bucket,
                       sum(documents) AS n, sum(score_sum) / n
                FROM {database}.sentiment_1m GROUP BY ticker, bucket
            """  # noqa: S608 - identifiers are validated run ids, the step an int
            _, rows = warehouse.query(sql)
            frames.append(
                pd.DataFrame(
                    rows, columns=["ticker", "bucket", f"documents_{label}", f"mean_{label}"]
                )
            )
            keys = ", ".join(ALERT_KEY)
            alerts.append(set(warehouse.rows(f"SELECT {keys} FROM {database}.alerts FINAL")))  # noqa: S608
            ranges = warehouse.rows(f"SELECT range_to, started_at FROM {database}.runs FINAL")  # noqa: S608
            notes += [
                f"run {run_id} ({label}) read a range ending {_moment(_aware(to))} UTC, after "
                f"it started ({_moment(_aware(at))}): documents that arrived later are missing "
                "from it, so a new replay of that range will differ"
                for to, at in ranges
                if to > at
            ]
    finally:
        warehouse.close()
    return RunDiff(
        _series(frames[0], frames[1]),
        sorted(alerts[0] - alerts[1]),
        sorted(alerts[1] - alerts[0]),
        (len(alerts[0]), len(alerts[1])),
        notes,
    )


def _aware(at: datetime) -> datetime:
    # chDB gives DateTime64(3, 'UTC') columns back as naive UTC datetimes.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _series(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    merged = a.merge(b, on=["ticker", "bucket"], how="outer", indicator="present")
    merged["present"] = (
        merged["present"].map({"both": "both", "left_only": "a", "right_only": "b"}).astype(str)
    )
    merged["bucket"] = pd.to_datetime(merged["bucket"], utc=True)
    for column in ("documents_a", "documents_b"):
        merged[column] = merged[column].fillna(0).astype("int64")
    merged["mean_diff"] = merged["mean_b"] - merged["mean_a"]
    merged["differs"] = (merged["present"] != "both") | (
        (merged["documents_a"] != merged["documents_b"]) | (merged["mean_diff"].abs() > 1e-6)
    )
    order = merged.assign(_abs=merged["mean_diff"].abs().fillna(float("inf")))
    order = order.sort_values(
        ["differs", "_abs", "ticker", "bucket"], ascending=[False, False, True, True]
    )
    return order.drop(columns="_abs").reset_index(drop=True)


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


def read_range(
    bootstrap: str, topic: str, start: datetime | None = None, end: datetime | None = None
) -> Iterator[tuple[int, int, int, Any]]:
    """Yield (timestamp ms, partition, offset, value) of a topic's records in [start, end).

    Without a range, every record up to the end offsets at the start. Ordered by timestamp,
    then partition and offset, so every replay sees one order.

    Raises:
        BrokerError: Kafka failed or the topic does not exist.
    """
    lo = 0 if start is None else int(start.timestamp() * 1000)
    hi = 2**63 - 1 if end is None else int(end.timestamp() * 1000)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id="surveil-replay",
            group_id=None,
            enable_auto_commit=False,
            key_deserializer=DefaultSerializer(),
            value_deserializer=JsonSerializer(),
        )
    except KafkaError as exc:
        msg = f"cannot reach Kafka at {bootstrap}: {exc}"
        raise BrokerError(msg) from exc
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            msg = f"topic {topic} does not exist"
            raise BrokerError(msg)
        ends = consumer.end_offsets(parts)
        if start is None:
            firsts: dict[TopicPartition, int | None] = consumer.beginning_offsets(parts)
        else:
            found = consumer.offsets_for_times(dict.fromkeys(parts, lo))
            firsts = {tp: None if at is None else at.offset for tp, at in found.items()}
        records: list[tuple[int, int, int, Any]] = []
        for tp in parts:
            first = firsts.get(tp)
            if first is None or first >= ends[tp]:  # nothing at or after the start here
                continue
            consumer.assign([tp])
            consumer.seek(tp, first)
            while consumer.position(tp) < ends[tp]:
                for batch in consumer.poll(timeout_ms=1_000, max_records=5_000).values():
                    for r in batch:
                        if r.offset < ends[tp] and lo <= r.timestamp < hi:
                            records.append((r.timestamp, tp.partition, r.offset, r.value))
    except KafkaError as exc:
        msg = f"cannot read {topic}: {exc}"
        raise BrokerError(msg) from exc
    finally:
        consumer.close()
    records.sort(key=lambda r: (r[0], r[1], r[2]))
    yield from records


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
    if end <= start:
        msg = f"empty range: {start.isoformat()} is not before {end.isoformat()}"
        raise ConfigError(msg)
    if by not in SELECTIONS:
        msg = f"select by {by!r}: use published or ingested"
        raise ConfigError(msg)
    factor = parse_speed(speed)
    classifier = load_classifier(
        model or settings.model,
        Runtime(settings.device, settings.threads, settings.precision, settings.classify_batch),
    )
    warehouse = Warehouse(connect(runs_dsn(settings)), run_database(settings, run_id))
    try:
        exists = _has_run(warehouse, run_id)
        if exists and not replace:
            msg = (
                f"run {run_id} exists already ({warehouse.database}): pick another "
                "--run-id, or --replace it"
            )
            raise ConfigError(msg)
        report = RunReport(run_id, warehouse.database, classifier.version)
        note = future_range_note(end, started)
        if note:
            report.notes.append(note)
        topic = f"{settings.topic_prefix}{DOCS_RAW}"
        bootstrap = settings.bootstrap_servers
        span = (None, None) if by == "published" else (start, end)
        records = list(read_range(bootstrap, topic, *span))
        docs, report.rejected = _select(records, start, end, by)
        if not docs:
            every = records if by == "published" else list(read_range(bootstrap, topic))
            raise ConfigError(_nothing_selected(topic, start, end, by, every))
        if exists:
            warehouse.command("DROP DATABASE {db}")
        warehouse.migrate()
        _record(warehouse, report, start, end, speed, settings, started, "running")
        _run(
            warehouse,
            classifier,
            docs,
            settings,
            report,
            batch,
            factor,
            docs[0][0],
            progress,
            sleep,
        )
        report.seconds = time.monotonic() - clock
        _record(warehouse, report, start, end, speed, settings, started, "finished")
    finally:
        warehouse.close()
    return report


def _has_run(warehouse: Warehouse, run_id: str) -> bool:
    tables = warehouse.rows(
        "SELECT 1 FROM system.tables WHERE database = {d:String} AND name = 'runs'",
        {"d": warehouse.database},
    )
    return bool(tables) and bool(
        warehouse.rows("SELECT run_id FROM {db}.runs WHERE run_id = {r:String}", {"r": run_id})
    )


def _select(
    records: list[tuple[int, int, int, Any]], start: datetime, end: datetime, by: Selection
) -> tuple[list[tuple[int, Document]], int]:
    """Return the documents to replay, each with its pacing clock (ms), and the rejected count.

    The pacing clock is the Kafka timestamp, or by publication the latest publication time
    so far: records keep their Kafka order, and a clock that never goes back paces them.
    """
    seen: set[str] = set()
    docs: list[tuple[int, Document]] = []
    rejected, latest = 0, 0
    for ts, _partition, _offset, value in records:
        try:
            doc = Document.parse(value)
        except DecodeError:
            rejected += 1  # the live classify agent dead-lettered it already
            continue
        if doc.doc_id in seen or (by == "published" and not start <= doc.published_at < end):
            continue
        seen.add(doc.doc_id)
        latest = max(latest, int(doc.published_at.timestamp() * 1000))
        docs.append((ts if by == "ingested" else latest, doc))
    return docs, rejected


def _nothing_selected(
    topic: str,
    start: datetime,
    end: datetime,
    by: Selection,
    records: list[tuple[int, int, int, Any]],
) -> str:
    """Say that [start, end) selects nothing, and what the topic holds instead."""
    held: dict[str, tuple[datetime, datetime]] = {}
    for ts, _partition, _offset, value in records:
        try:
            doc = Document.parse(value)
        except DecodeError:
            continue
        held.setdefault(doc.doc_id, (doc.published_at, datetime.fromtimestamp(ts / 1000, UTC)))
    told = f"no documents {by} in [{_moment(start)}, {_moment(end)}) UTC: "
    if not held:
        return f"{told}{topic} holds no documents"
    published = sorted(p for p, _ in held.values())
    ingested = sorted(i for _, i in held.values())
    told += (
        f"{topic} holds {len(held)} documents published {_between(published[0], published[-1])}, "
        f"ingested {_between(ingested[0], ingested[-1])}"
    )
    other: Selection = "ingested" if by == "published" else "published"
    there = sum(start <= (i if other == "ingested" else p) < end for p, i in held.values())
    if there:
        told += f"; {there} were {other} in that range (--by {other})"
    return told


def _moment(at: datetime) -> str:
    if at.hour == at.minute == at.second == at.microsecond == 0:
        return f"{at:%Y-%m-%d}"
    return f"{at:%Y-%m-%d %H:%M}" if at.second == at.microsecond == 0 else f"{at:%Y-%m-%d %H:%M:%S}"


def _between(first: datetime, last: datetime) -> str:
    # Seconds only where minutes would say "01:10 to 01:10".
    clock = "%H:%M:%S" if last - first < timedelta(minutes=1) else "%H:%M"
    shown = f"{last:{clock}}" if first.date() == last.date() else f"{last:%Y-%m-%d {clock}}"
    return f"{first:%Y-%m-%d {clock}} to {shown} UTC"


def _run(
    warehouse: Warehouse,
    classifier: Classifier,
    docs: list[tuple[int, Document]],
    settings: Settings,
    report: RunReport,
    batch: int,
    factor: float | None,
    first_ts: int,
    progress: bool,
    sleep: Callable[[float], None],
) -> None:
    store = Store(warehouse)
    ruleset = alert_ruleset(settings)
    evaluator = Evaluator(ruleset)
    # No silences and no outbox: a replay decides what would have been sent, by event time.
    router = Router(ruleset.route, ruleset.inhibit, ruleset.mute)
    states: dict[str, dict[str, Any]] = {}
    paced_from = time.monotonic()
    with tqdm(total=len(docs), desc="replay", unit="doc", disable=not progress) as bar:
        for i in range(0, len(docs), batch):
            chunk = docs[i : i + batch]
            if factor is not None:
                # Nx: the chunk's last document is due (its clock - the first's) / N after start.
                due = (chunk[-1][0] - first_ts) / 1000 / factor
                wait = due - (time.monotonic() - paced_from)
                if wait > 0:
                    sleep(wait)
            documents = [doc for _, doc in chunk]
            scored = score_documents(classifier, documents)
            report.documents += store.write_documents(documents)
            report.scores += store.write_scores(scored)
            alerts = []
            for rec in scored:
                states[rec.ticker], conditions = evaluator.observe(states.get(rec.ticker, {}), rec)
                for condition in conditions:
                    router.observe(condition, rec.published_at)
                alerts += _dry_run(router, rec.published_at)
            report.alerts += store.write_alerts(alerts)
            report.alert_list += alerts
            bar.update(len(chunk))
    if docs:
        # What was still waiting (group wait, interval) at the end of the range goes out.
        route = ruleset.route
        last = max(doc.published_at for _, doc in docs)
        later = last + timedelta(seconds=route.group_wait_s + route.group_interval_s + 1)
        alerts = _dry_run(router, later)
        report.alerts += store.write_alerts(alerts)
        report.alert_list += alerts


def _dry_run(router: Router, now: datetime) -> list[Alert]:
    return [n.alert.model_copy(update={"deliveries": (DRY_RUN,)}) for n in router.notices(now)]


def _record(
    warehouse: Warehouse,
    report: RunReport,
    start: datetime,
    end: datetime,
    speed: str,
    settings: Settings,
    started: datetime,
    status: str,
) -> None:
    row = [
        report.run_id,
        start,
        end,
        report.model_version,
        speed,
        f"{settings.topic_prefix}{DOCS_RAW}",
        report.documents,
        report.scores,
        report.alerts,
        report.rejected,
        started,
        utcnow(),
        status,
    ]
    columns = (
        "run_id",
        "range_from",
        "range_to",
        "model_version",
        "speed",
        "source_topic",
        "documents",
        "scores",
        "alerts",
        "rejected",
        "started_at",
        "finished_at",
        "status",
    )
    warehouse.insert("runs", [row], columns)
