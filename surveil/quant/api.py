"""`Quant`, read-only access to surveil's data, and `connect`, which opens it from settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd

from infra.closing import Closing
from infra.db import Parameters
from infra.errors import ConfigError, StoreError
from infra.reader import QueryLimits, ReadOnlyReader
from infra.settings import Settings
from surveil.quant import records, series
from surveil.quant.base import READ_ONLY, Reader, dsn_location, query_limits
from surveil.quant.frames import utc_columns
from surveil.quant.remote import WorkerReader
from surveil.quant.token import read_token, token_path

P = ParamSpec("P")
R = TypeVar("R")


def _on_reader(query: Callable[Concatenate[Reader, P], R]) -> Callable[Concatenate[Quant, P], R]:
    """Return a query function as a `Quant` method that runs it on the quant's reader."""

    @functools.wraps(query)
    def method(self: Quant, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return query(self.reader, *args, **kwargs)

    return method


class Quant(Closing):
    """Read-only access to surveil's ClickHouse data.

    Its queries are those of `surveil.quant.series` and `surveil.quant.records`, run on
    ``reader``: `sentiment`, `documents`, `alerts`; `sql` runs any read.

    Args:
        reader: runs read-only queries (a `ReadOnlyReader`, or the worker's endpoint).
        close: releases the connection.
        via: how the data is reached, for messages (``chdb``, ``server``, ``worker``).
    """

    def __init__(self, reader: Reader, close: Callable[[], None], via: str) -> None:
        self.reader = reader
        self._close = close
        self.via = via

    sentiment = _on_reader(series.sentiment)
    documents = _on_reader(records.documents)
    alerts = _on_reader(records.alerts)

    def sql(self, query: str, parameters: Parameters = None) -> pd.DataFrame:
        """Run read-only SQL (``{db}`` names surveil's database) and return a DataFrame.

        Datetime columns come back as UTC-aware, the same through a worker or directly.
        """
        columns, rows = self.reader.query(query, parameters, READ_ONLY)
        return utc_columns(pd.DataFrame(rows, columns=columns))

    def close(self) -> None:
        """Release the connection (and a chDB folder opened directly)."""
        self._close()


def connect(settings: Settings | None = None, *, run: str | None = None) -> Quant:
    """Open read-only access to the data the settings point at, or to a replay run's.

    With a ClickHouse server, a read-only connection of its own. With embedded chDB, the
    folder belongs to the process that writes it: when a worker of this folder and database
    answers on 127.0.0.1:``web_port`` (and takes the token in ``state_dir``), the queries go
    through its read-only endpoint; otherwise the folder is opened directly, read-only. Every
    way, a query is one read statement within the ``query_*`` limits of the settings.

    Args:
        settings: the SURVEIL_* settings (default: from the environment and .env).
        run: a replay run's id (`surveil runs list`): its database, where the replay wrote
            it (with chDB its own folder, which no worker holds), and ``{db}`` names it.

    Raises:
        ConfigError: there is no such run.
        StoreError: the folder is held by another process and no worker endpoint serving it
            answered at ``web_port``; or the server could not be reached.
        StateError: the worker's query token file is there but cannot be read.
    """
    from_env: dict[str, Any] = {}  # everything from SURVEIL_* variables and .env
    settings = settings or Settings(**from_env)
    limits = query_limits(settings)
    if run is not None:
        return _run_quant(settings, run, limits)
    if not settings.dsn.startswith("chdb:"):
        reader = ReadOnlyReader(settings.dsn, settings.clickhouse_database, limits)
        return Quant(reader, reader.close, "server")
    worker, why_not = _worker_reader(settings)
    if worker is not None:
        return Quant(worker, worker.close, "worker")
    try:
        reader = ReadOnlyReader(settings.dsn, settings.clickhouse_database, limits)
    except StoreError as exc:
        msg = (
            f"cannot open {dsn_location(settings.dsn)}: another process holds the chDB folder, "
            f"and {why_not} (is the worker running with web_port {settings.web_port}?)"
        )
        raise StoreError(msg) from exc
    return Quant(reader, reader.close, "chdb")


def _run_quant(settings: Settings, run: str, limits: QueryLimits) -> Quant:
    """Open a replay run's database read-only."""
    from surveil.replay.runs import run_database, runs_dsn  # noqa: PLC0415

    database = run_database(settings, run)
    reader = ReadOnlyReader(runs_dsn(settings), database, limits)
    try:
        found = reader.query(
            "SELECT 1 FROM system.databases WHERE name = {n:String}", {"n": database}
        )[1]
    except BaseException:
        reader.close()
        raise
    if not found:
        reader.close()
        msg = f"no run {run} (database {database}): `surveil runs list` shows the runs"
        raise ConfigError(msg)
    return Quant(reader, reader.close, "run")


def _worker_reader(settings: Settings) -> tuple[WorkerReader | None, str]:
    """Return a reader over the worker serving the settings' data, or why there is none."""
    url = f"http://127.0.0.1:{settings.web_port}"
    path = token_path(settings.state_dir)
    token = read_token(path)
    if token is None:
        return None, f"there is no query token at {path} (a worker writes it when it starts)"
    reader = WorkerReader(url, token)
    try:
        # A short wait: with no worker the port refuses at once or nothing answers at all.
        served = reader.identity(timeout=2.0)
    except StoreError as exc:
        reader.close()
        return None, str(exc)
    wanted = {"database": settings.clickhouse_database, "dsn_path": dsn_location(settings.dsn)}
    if {key: served.get(key) for key in wanted} != wanted:
        reader.close()
        theirs = f"{served.get('dsn_path')} (database {served.get('database')})"
        return None, f"the worker at {url} serves {theirs}, not this database"
    return reader, ""
