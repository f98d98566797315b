"""The Python API for quants: sentiment series, documents, alerts and SQL as DataFrames.

```python
from datetime import UTC, datetime
import surveil.api as sv

with sv.connect() as db:
    frame = db.sentiment(["AAPL", "MSFT"], datetime(2026, 3, 1, tzinfo=UTC),
                         datetime(2026, 3, 2, tzinfo=UTC), freq="5min")
```

`connect` reads the same settings as the CLI (``SURVEIL_*`` variables, ``.env``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import pandas as pd

from infra import quant
from infra.quant import READ_ONLY, Reader
from infra.settings import Settings


class Quant:
    """Read-only access to surveil's ClickHouse data.

    Args:
        reader: runs read-only queries (the warehouse, or the worker's endpoint).
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
        start: datetime,
        end: datetime,
        freq: str = "1min",
        as_of: datetime | None = None,
    ) -> pd.DataFrame:
        """Return per (ticker, bucket): documents, mean score, negative share, weighted score.

        ``as_of`` drops rows scored or ingested after it (point in time).
        """
        return quant.sentiment(self.reader, tickers, start, end, freq, as_of)

    def documents(
        self, ticker: str, start: datetime, end: datetime, as_of: datetime | None = None
    ) -> pd.DataFrame:
        """Return a ticker's scored documents in a range, oldest first."""
        return quant.documents(self.reader, ticker, start, end, as_of)

    def alerts(
        self,
        start: datetime,
        end: datetime,
        tickers: Sequence[str] | str | None = None,
        state: str | None = None,
    ) -> pd.DataFrame:
        """Return alert states (firing, resolved) fired in a range."""
        return quant.alerts(self.reader, start, end, tickers, state)

    def sql(self, query: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL (``{db}`` names surveil's database) and return a DataFrame."""
        columns, rows = self.reader.query(query, parameters, READ_ONLY)
        return pd.DataFrame(rows, columns=columns)

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


def connect(settings: Settings | None = None) -> Quant:
    """Open read-only access to the data the settings point at.

    With a ClickHouse server, a direct connection. With embedded chDB, the folder belongs to
    the process that writes it: when a worker runs, the queries go through its read-only
    endpoint on 127.0.0.1; otherwise the folder is opened directly.
    """
    from surveil.runtime import open_warehouse  # noqa: PLC0415 - the CLI's wiring

    from_env: dict[str, Any] = {}  # everything from SURVEIL_* variables and .env
    settings = settings or Settings(**from_env)
    warehouse = open_warehouse(settings, migrate=False)
    via = "chdb" if settings.dsn.startswith("chdb:") else "server"
    return Quant(warehouse, warehouse.close, via)
