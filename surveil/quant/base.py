"""What every way of reading shares: the `Reader` interface, its limits and data location.

A `Reader` is anything with the `Warehouse.query` signature: an `infra.reader.ReadOnlyReader`,
the running worker's endpoint through `surveil.quant.remote.WorkerReader`, or the warehouse
itself (tests, benchmarks). The quant queries take one, so the same SQL runs whichever way
the data is reached.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from infra.db import Parameters, Table, redact
from infra.reader import QueryLimits

if TYPE_CHECKING:
    from infra.settings import Settings

# For a bare Warehouse (tests, benchmarks): 2 reads and still lets settings change per query.
# A ReadOnlyReader and the worker's endpoint ignore it: their sessions are readonly=1 already.
READ_ONLY = {"readonly": 2}


class Reader(Protocol):
    """Runs a read-only query; ``{db}`` in the SQL names the database."""

    def query(self, sql: str, parameters: Parameters = None, settings: Parameters = None) -> Table:
        """Return the column names and rows of a read."""
        ...


def query_limits(settings: Settings) -> QueryLimits:
    """Return the per-query limits the settings give the quants' reads."""
    return QueryLimits(
        seconds=settings.query_timeout_s,
        memory_bytes=settings.query_max_memory_mb << 20,
        rows=settings.query_max_rows,
    )


def dsn_location(dsn: str) -> str:
    """Return where a DSN's data lives: the real path of a chDB folder, or the server URL."""
    if dsn.startswith("chdb:"):
        return os.path.realpath(dsn.removeprefix("chdb://"))
    return redact(dsn)
