"""Compare two replay runs: their series per (ticker, bucket) and their alert states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from infra.db import Warehouse, connect
from infra.errors import ConfigError
from infra.settings import Settings
from surveil.quant.times import DEFAULT_FREQ, parse_freq
from surveil.replay.runs import moment, run_database, runs_dsn

# One alert state of one episode: an episode fires at one event time in both runs, while its
# value and window follow the documents each run saw last.
ALERT_KEY = ("ticker", "rule", "state", "fired_at")


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
                f"run {run_id} ({label}) read a range ending {moment(_aware(to))} UTC, after "
                f"it started ({moment(_aware(at))}): documents that arrived later are missing "
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
