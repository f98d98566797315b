"""Quants' guarantees on the real broker and chDB: rollups that never double count,
point-in-time queries, and replays that match the live run and each other."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alerts.dryrun import DRY_RUN
from infra.db import MIGRATIONS_DIR
from infra.errors import ConfigError
from infra.settings import Settings
from ingest.base import collect
from ingest.rss import RssSource
from models.lexicon import LexiconClassifier
from streams.records import Document
from streams.steps import score
from streams.store import SCORE_COLUMNS
from surveil.cli import cli
from surveil.compose.runtime import WorkerProcess, open_warehouse, settings_env
from surveil.demo.receiver import WebhookReceiver
from surveil.demo.run import processed
from surveil.quant.series import sentiment
from surveil.quant.times import parse_freq
from surveil.replay.diff import diff_runs
from surveil.replay.run import replay
from surveil.replay.runs import list_runs, open_run
from tests.feeds import MSFT_FEED, publish_feed, rewind

DAY = timedelta(days=1)


@dataclass
class Live:
    """One live run: the feed's records delivered three times to a real worker (restarted on
    a rewound consumer group)."""

    settings: Settings
    docs: list[Document]
    start: datetime
    end: datetime
    webhook_posts: int


@pytest.fixture(scope="module")
def live(
    module_settings: Callable[..., Settings],
    tmp_path_factory: pytest.TempPathFactory,
    shared_dir: Path,
) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("quant")
    settings = module_settings(
        folder,
        kafka_partitions=1,  # arrival in publication order, as in test_pipeline
        signal_window_s=2 * 86_400,
        alert_threshold=-0.15,
        alert_min_docs=3,
    )
    docs = collect(RssSource("seekingalpha-msft", str(shared_dir / MSFT_FEED))).documents
    pairs = sum(len(d.tickers) for d in docs)
    start = datetime.now(UTC)
    with WebhookReceiver() as receiver:
        env = {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url}
        for delivery in range(1, 4):  # every record delivered three times
            worker = WorkerProcess(settings, env, folder / f"worker{delivery}.log")
            worker.start()
            try:
                if delivery == 1:
                    publish_feed(settings, shared_dir / MSFT_FEED)
                # A fresh worker on a rewound group reads docs.scored from its beginning: what
                # every earlier run scored (again) and what this one scores again.
                worker.wait_until(processed(len(docs), pairs * delivery), 180)
            finally:
                assert worker.stop() == 0
            rewind(settings)  # the next run is delivered every record again
        end = datetime.now(UTC) + timedelta(seconds=1)
    posts = len(receiver.received)
    yield Live(settings, docs, start, end, posts)


def expected_rollup(docs: list[Document]) -> dict[str, tuple[int, float]]:
    """Per ticker: the documents and score sum one delivery must give (scored here)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for rec in score(LexiconClassifier(), docs):
        totals[rec.ticker][0] += 1
        totals[rec.ticker][1] += rec.score
    return {t: (int(n), s) for t, (n, s) in totals.items()}


def rollup(warehouse: Any, table: str = "sentiment_1m") -> dict[str, tuple[int, float]]:
    column = "score_sum" if table == "sentiment_1m" else "mean_score * documents"
    rows = warehouse.rows(
        f"SELECT ticker, sum(documents), sum({column}) FROM {{db}}.{table} GROUP BY ticker"  # noqa: S608
    )
    return {str(t): (int(n), float(s)) for t, n, s in rows}


def close_to(a: dict[str, tuple[int, float]], b: dict[str, tuple[int, float]]) -> bool:
    return a.keys() == b.keys() and all(
        a[t][0] == b[t][0] and abs(a[t][1] - b[t][1]) < 1e-3 for t in a
    )


@pytest.mark.integration
def test_three_deliveries_leave_every_rollup_as_one_delivery_gives(live: Live) -> None:
    expected = expected_rollup(live.docs)
    assert sum(n for n, _ in expected.values()) == 290
    warehouse = open_warehouse(live.settings)
    try:
        assert close_to(rollup(warehouse), expected)
        for view in ("sentiment_5m", "sentiment_1h", "sentiment_1d"):
            assert close_to(rollup(warehouse, view), expected), view
        scores = warehouse.rows("SELECT count(), uniqExact(doc_id, ticker) FROM {db}.scores")
        assert scores == [(290, 290)]
    finally:
        warehouse.close()


@pytest.mark.integration
def test_a_replay_matches_the_live_run_and_sends_nothing_live(live: Live) -> None:
    with WebhookReceiver() as receiver:
        settings = live.settings.model_copy(
            update={"alert_slack_webhook": receiver.url}  # a live channel the replay must not use
        )
        report = replay(settings, "first", live.start, live.end, by="ingested")
        again = replay(settings, "second", live.start, live.end, by="ingested")
        assert receiver.received == []
    assert again.scores == report.scores
    assert (report.documents, report.scores) == (30, 290)
    assert {(a.ticker, a.state) for a in report.alert_list} == {
        ("MSFT", "firing"),
        ("MSFT", "resolved"),
    }
    assert all(a.deliveries == (DRY_RUN,) for a in report.alert_list)
    assert live.webhook_posts == 2  # the live run did post its two alerts

    live_wh = open_warehouse(live.settings)
    try:
        live_rollup = rollup(live_wh)
        live_alerts = sorted(live_wh.rows("SELECT alert_id, state, value FROM {db}.alerts FINAL"))
        live_minutes = sorted(live_wh.rows("SELECT * FROM {db}.sentiment_1m FINAL"))
    finally:
        live_wh.close()
    run = open_run(live.settings, "first")
    try:
        assert close_to(rollup(run), live_rollup)
        assert (
            sorted(run.rows("SELECT alert_id, state, value FROM {db}.alerts FINAL")) == live_alerts
        )
        run_minutes = sorted(run.rows("SELECT * FROM {db}.sentiment_1m FINAL"))
        assert [r[:4] for r in run_minutes] == [r[:4] for r in live_minutes]
    finally:
        run.close()

    diff = diff_runs(live.settings, "first", "second", freq="1h")
    assert len(diff) > 0 and not diff["differs"].any()  # two replays, identical series
    runs = {r["run_id"]: r for r in list_runs(live.settings)}
    assert runs["first"]["status"] == "finished" and runs["first"]["scores"] == 290


@pytest.mark.integration
def test_a_run_id_is_not_overwritten_by_accident(live: Live) -> None:
    replay(live.settings, "once", live.start, live.end, by="ingested")
    with pytest.raises(ConfigError, match="exists already"):
        replay(live.settings, "once", live.start, live.end, by="ingested")
    assert (
        replay(live.settings, "once", live.start, live.end, by="ingested", replace=True).scores
        == 290
    )


def test_as_of_excludes_rows_scored_or_ingested_later(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    t0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    warehouse = open_warehouse(settings)
    try:
        rows = []
        for i, late in enumerate([0, 0, 5, 60]):  # minutes between publication and scoring
            at = t0 + timedelta(minutes=i)
            rows.append(
                [f"d{i}", "AAPL", "news", "s", at, at, "positive", 0.1, 0.2, 0.7, 0.6,
                 "none", 0.0, 1.0, "m", at + timedelta(minutes=late), at + timedelta(minutes=late)]
            )  # fmt: skip
        warehouse.insert("scores", rows, [*SCORE_COLUMNS, "ingested_at"])
        end = t0 + timedelta(hours=2)
        full = sentiment(warehouse, "AAPL", t0, end, "1h")
        then = sentiment(warehouse, "AAPL", t0, end, "1h", as_of=t0 + timedelta(minutes=4))
        later = sentiment(warehouse, "AAPL", t0, end, "1h", as_of=t0 + timedelta(minutes=30))
    finally:
        warehouse.close()
    assert full["documents"].tolist() == [4]
    assert then["documents"].tolist() == [2]  # d2 was scored at 14:07, d3 at 15:03
    assert later["documents"].tolist() == [3]


def test_frequencies_and_naive_times() -> None:
    assert [parse_freq(f).name for f in ("1min", "5m", "90min", "1h", "24h", "1d")] == [
        "1min", "5min", "90min", "1h", "1d", "1d",
    ]  # fmt: skip
    with pytest.raises(ConfigError):
        parse_freq("30s")
    with pytest.raises(ConfigError, match="no time zone"):
        sentiment(None, "AAPL", datetime(2026, 3, 2), datetime(2026, 3, 3))  # type: ignore[arg-type]  # noqa: DTZ001


@pytest.mark.integration
def test_replay_and_runs_from_the_command_line(live: Live) -> None:
    env = settings_env(live.settings)
    span = ["--by", "ingested", "--from", live.start.isoformat(), "--to", live.end.isoformat()]
    for run_id in ("cli_a", "cli_b"):
        result = CliRunner().invoke(cli, ["replay", *span, "--run-id", run_id], env=env)
        assert result.exit_code == 0, result.output
        assert "30 documents, 290 scores" in result.output
    listed = CliRunner().invoke(cli, ["runs", "list"], env=env)
    assert listed.exit_code == 0 and "cli_a" in listed.output and "cli_b" in listed.output
    same = CliRunner().invoke(cli, ["runs", "diff", "cli_a", "cli_b", "--freq", "1d"], env=env)
    assert same.exit_code == 0 and ": 0 differ" in same.output
    missing = CliRunner().invoke(cli, ["runs", "diff", "cli_a", "nope"], env=env)
    assert missing.exit_code == 1 and "no run nope" in missing.output


def _score(doc: str, ticker: str, at: datetime, score: float, model: str) -> list[Any]:
    label = "negative" if score < 0 else "positive"
    return [doc, ticker, "news", "s", at, at, label, max(0.0, -score), 0.5, max(0.0, score),
            score, "none", 0.0, 1.0, model, at, at]  # fmt: skip


def _by_model(warehouse: Any) -> list[tuple[Any, ...]]:
    return sorted(
        warehouse.rows(
            "SELECT ticker, model_version, sum(documents), round(sum(score_sum), 4) "
            "FROM {db}.sentiment_1m_by_model GROUP BY ticker, model_version"
        )
    )


def test_migration_005_backfills_the_rollup_by_model_and_the_view_keeps_it(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    before = tmp_path / "migrations"
    before.mkdir()
    for migration in sorted(MIGRATIONS_DIR.glob("00[1-3]_*.sql")):
        (before / migration.name).write_text(migration.read_text("utf-8"), "utf-8")
    t0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    warehouse = open_warehouse(settings, migrate=False)
    try:
        warehouse.migrate(before)  # a database from before 005, with data in it
        old = [_score(f"d{i}", "AAPL", t0 + timedelta(minutes=i), 0.5, "m1") for i in range(3)]
        old.append(_score("d9", "AAPL", t0, -0.25, "m2"))
        warehouse.insert("scores", old, [*SCORE_COLUMNS, "ingested_at"])
        assert "005_rollups_by_model" in warehouse.migrate()
        assert _by_model(warehouse) == [("AAPL", "m1", 3, 1.5), ("AAPL", "m2", 1, -0.25)]
        new = [_score("d10", "AAPL", t0, 0.25, "m2"), _score("d1", "MSFT", t0, 0.75, "m1")]
        warehouse.insert("scores", new, [*SCORE_COLUMNS, "ingested_at"])
        assert _by_model(warehouse) == [
            ("AAPL", "m1", 3, 1.5),
            ("AAPL", "m2", 2, 0.0),
            ("MSFT", "m1", 1, 0.75),
        ]
        # The all-models rollup is unchanged: what retention, replays and diffs read.
        assert sorted(
            warehouse.rows("SELECT ticker, sum(documents) FROM {db}.sentiment_1m GROUP BY ticker")
        ) == [("AAPL", 5), ("MSFT", 1)]
    finally:
        warehouse.close()


class Recorder:
    """A reader that runs every query on the warehouse and keeps the last one."""

    def __init__(self, warehouse: Any) -> None:
        self.warehouse = warehouse
        self.last: tuple[str, dict[str, Any] | None] = ("", None)

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: Any = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.last = (sql, parameters)
        result: tuple[list[str], list[tuple[Any, ...]]] = self.warehouse.query(
            sql, parameters, settings
        )
        return result


def _granules(warehouse: Any, sql: str, parameters: dict[str, Any] | None) -> list[str]:
    """Return the 'read/total' granules of each table read, from EXPLAIN indexes = 1."""
    _, rows = warehouse.query("EXPLAIN indexes = 1 " + sql, parameters)
    lines = [str(r[0]).strip() for r in rows]
    # The PrimaryKey index of each table read says 'Granules: read/total'.
    return [g.removeprefix("Granules: ") for g in lines if g.startswith("Granules: ") and "/" in g]


def test_a_range_query_reads_only_the_granules_of_its_range(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    warehouse = open_warehouse(settings)
    try:
        # 10 tickers, 2 models, 10,000 minutes each: 200,000 rows, about 25 granules.
        warehouse.command(
            "INSERT INTO {db}.sentiment_1m_by_model SELECT concat('T', toString(number % 10)), "
            "if(intDiv(number, 10) % 2 = 0, 'm1', 'm2'), "
            "toDateTime('2026-01-01 00:00:00', 'UTC') + 60 * intDiv(number, 20), 1, 0, 0.5, "
            "1.0, 0.5, toDateTime64('2026-03-01 00:00:00', 3, 'UTC') FROM numbers(200000)"
        )
        warehouse.command("OPTIMIZE TABLE {db}.sentiment_1m_by_model FINAL")
        reader = Recorder(warehouse)
        start = datetime(2026, 1, 3, tzinfo=UTC)
        series = sentiment(reader, "T3", start, start + DAY)
        assert series["documents"].sum() == 1440 and series["model_version"].iloc[0] == "m2"
        reads = _granules(warehouse, *reader.last)
        assert reads, reads  # EXPLAIN shows the series' read; the model's choice reads alike
        for read in reads:
            done, total = (int(n) for n in read.split("/"))
            assert total >= 20 and done <= 2, reads
    finally:
        warehouse.close()
