"""The Python API for quants: sentiment series, documents, alerts and SQL as DataFrames.

```python
from datetime import UTC, datetime
import surveil.api as sv

with sv.connect() as db:
    frame = db.sentiment(["AAPL", "MSFT"], datetime(2026, 3, 1, tzinfo=UTC),
                         datetime(2026, 3, 2, tzinfo=UTC), freq="5min")
    means = db.sentiment(["AAPL", "MSFT"], "2026-03-01", "2026-03-08", fill=True, wide=True)
```

Times are aware datetimes, dates (midnight UTC) or ISO strings (UTC when they name no zone).
`connect` reads the same settings as the CLI (``SURVEIL_*`` variables, ``.env``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import pandas as pd

from infra import quant
from infra.db import QueryLimits, ReadOnlyReader
from infra.errors import ConfigError, StoreError
from infra.quant import DEFAULT_FREQ, READ_ONLY, AlertTime, Moment, Reader
from infra.settings import Settings
from surveil.endpoint import WorkerReader, dsn_location, query_limits, read_token, token_path


class Quant:
    """Read-only access to surveil's ClickHouse data.

    Args:
        reader: runs read-only queries (a `ReadOnlyReader`, or the worker's endpoint).
        close: releases the connection.
        via: how the data is reached, for messages (``chdb``, ``server``, ``worker``).
    """

    def __init__(self, reader: Reader, close: Callable[[], None], via: str) -> None:
        self.reader = reader
        self._close = close
        self.via = via

    def sentiment(
        self,
        tickers: Sequence[str] | str,
        start: Moment,
        end: Moment,
        freq: str = DEFAULT_FREQ,
        as_of: Moment | None = None,
        *,
        model: str | None = None,
        fill: bool = False,
        wide: bool = False,
        value: str = "mean_score",
    ) -> pd.DataFrame:
        """Return per (ticker, bucket): documents, mean score, negative share, weighted score.

        Args:
            as_of: drop rows scored or ingested after it (point in time).
            model: the model version; default: the one that scored these tickers' range
                most recently (a series never mixes two models' scales).
            fill: every bucket of the range, those without documents with 0 documents and
                NaN scores.
            wide: one column of ``value`` per ticker, indexed by bucket (a DatetimeIndex).
            value: the column a wide frame holds (mean_score, weighted_score, documents, ...).
        """
        frame = quant.sentiment(
            self.reader, tickers, start, end, freq, as_of, model=model, fill=fill
        )
        if not wide:
            return frame
        names = [tickers] if isinstance(tickers, str) else list(tickers)
        return quant.wide(frame, value, names)

    def documents(
        self, ticker: str, start: Moment, end: Moment, as_of: Moment | None = None
    ) -> pd.DataFrame:
        """Return a ticker's scored documents in a range, oldest first."""
        return quant.documents(self.reader, ticker, start, end, as_of)

    def alerts(
        self,
        start: Moment,
        end: Moment,
        tickers: Sequence[str] | str | None = None,
        state: str | None = None,
        by: AlertTime = "fired_at",
    ) -> pd.DataFrame:
        """Return alert states (firing, resolved) in a range of ``by``: fired_at or window_end."""
        return quant.alerts(self.reader, start, end, tickers, state, by)

    def sql(self, query: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL (``{db}`` names surveil's database) and return a DataFrame.

        Datetime columns come back as UTC-aware, the same through a worker or directly.
        """
        columns, rows = self.reader.query(query, parameters, READ_ONLY)
        return _utc_columns(pd.DataFrame(rows, columns=columns))

    def close(self) -> None:
        """Release the connection (and a chDB folder opened directly)."""
        self._close()

    def __enter__(self) -> Quant:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _utc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Make datetime columns UTC-aware: clickhouse-connect returns UTC times naive."""
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            frame[column] = values.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            frame[column] = values.dt.tz_localize("UTC")
    return frame


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
    from surveil.replay import run_database, runs_dsn  # noqa: PLC0415 - replay loads the models

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
