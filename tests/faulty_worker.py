"""``python -m tests.faulty_worker worker``: the real worker, with ClickHouse writes that fail
while a file exists.

The engine, the broker and every agent are the real ones; only `Warehouse._insert` is wrapped,
so that a test can make ClickHouse refuse writes for a while (as a full disk or a server
outage would) and then recover. ``SURVEIL_TEST_FAIL_WRITES`` names the file; while it exists
every insert into ``SURVEIL_TEST_FAIL_TABLES`` (comma-separated, default documents,scores)
raises `StoreError` before reaching ClickHouse.

``SURVEIL_TEST_CRASH_CLASSIFY=1`` makes the model raise on every batch instead: a bug, not a
failing write, so the classify agent dies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.db import Warehouse
from infra.errors import StoreError
from streams import classify
from surveil.cli import main

_flag = Path(os.environ.get("SURVEIL_TEST_FAIL_WRITES", "/nonexistent/flag"))
_tables = set(os.environ.get("SURVEIL_TEST_FAIL_TABLES", "documents,scores").split(","))
_insert = Warehouse._insert


def _failing_insert(
    self: Warehouse,
    table: str,
    data: Sequence[Sequence[Any]],
    columns: Sequence[str],
    token: str | None,
    column_oriented: bool,
) -> int:
    if table in _tables and data and _flag.exists():
        msg = f"insert into {table} failed: injected fault (Code: 243. NOT_ENOUGH_SPACE)"
        raise StoreError(msg)
    return _insert(self, table, data, columns, token, column_oriented)


def _crashing_model(*_: Any) -> list[Any]:
    msg = "injected bug in the model"
    raise ZeroDivisionError(msg)


Warehouse._insert = _failing_insert  # type: ignore[method-assign]
if os.environ.get("SURVEIL_TEST_CRASH_CLASSIFY") == "1":
    classify.score = _crashing_model  # type: ignore[assignment]

if __name__ == "__main__":
    main()
