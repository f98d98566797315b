"""Where a replay's runs live: one database each, and the ``runs`` table that lists it.

A run lives in its own database, ``<database>_run_<run_id>``. With embedded chDB the run
databases sit in a separate folder (``<state_dir>/runs/clickhouse``), because the live worker
owns the main one; with a ClickHouse server they sit beside the live database.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from infra.db import Warehouse, connect
from infra.errors import ConfigError
from infra.settings import Settings
from streams.records import utcnow

_RUN_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
RUN_COLUMNS = (
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


def has_run(warehouse: Warehouse, run_id: str) -> bool:
    """Whether the run's database lists the run."""
    tables = warehouse.rows(
        "SELECT 1 FROM system.tables WHERE database = {d:String} AND name = 'runs'",
        {"d": warehouse.database},
    )
    return bool(tables) and bool(
        warehouse.rows("SELECT run_id FROM {db}.runs WHERE run_id = {r:String}", {"r": run_id})
    )


def record_run(warehouse: Warehouse, row: dict[str, Any], status: str) -> None:
    """Write the run's row (a ReplacingMergeTree keeps the latest) with its status."""
    values = {**row, "finished_at": utcnow(), "status": status}
    warehouse.insert("runs", [[values[c] for c in RUN_COLUMNS]], RUN_COLUMNS)


def moment(at: datetime) -> str:
    """Write a time as briefly as it allows: a date, minutes, or seconds."""
    if at.hour == at.minute == at.second == at.microsecond == 0:
        return f"{at:%Y-%m-%d}"
    return f"{at:%Y-%m-%d %H:%M}" if at.second == at.microsecond == 0 else f"{at:%Y-%m-%d %H:%M:%S}"
