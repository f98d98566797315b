"""``python -m tests.faulty_worker worker``: the real worker, with ClickHouse writes that fail
while a file exists.

The engine, the broker and every agent are the real ones; only `Warehouse._insert` is wrapped,
so that a test can make ClickHouse refuse writes for a while (as a full disk or a server
outage would) and then recover. ``SURVEIL_TEST_FAIL_WRITES`` names the file; while it exists
every insert into ``SURVEIL_TEST_FAIL_TABLES`` (comma-separated, default documents,scores)
raises `StoreError` before reaching ClickHouse.

``SURVEIL_TEST_CRASH_CLASSIFY=1`` makes the model raise on every batch instead: a bug, not a
failing write, so the classify agent dies.

``SURVEIL_TEST_SKIP_FETCHED=TOPIC/PARTITION/FIRST-LAST`` drops those fetched records, once
each, after the fetcher moved past them: what faust-streaming's ``getmany`` does to a fetch
it stops reading in a rebalance (`streams.ordered`). Every consumer of the worker sees it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

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
    data: Sequence[Sequence[Any]] | pa.Table,
    columns: Sequence[str],
    token: str | None,
) -> int:
    if table in _tables and len(data) and _flag.exists():
        msg = f"insert into {table} failed: injected fault (Code: 243. NOT_ENOUGH_SPACE)"
        raise StoreError(msg)
    return _insert(self, table, data, columns, token)


def _crashing_model(*_: Any) -> list[Any]:
    msg = "injected bug in the model"
    raise ZeroDivisionError(msg)


def _skipping(spec: str) -> Any:
    """A fetch that drops the records ``spec`` names, the first time each is fetched."""
    where, _, span = spec.rpartition("/")
    topic, _, partition = where.rpartition("/")
    first, _, last = span.partition("-")
    skip = {(topic, int(partition), o) for o in range(int(first), int(last) + 1)}
    fetch = AIOKafkaConsumerThread._fetch_records

    async def fetch_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        records = await fetch(self, *args, **kwargs)
        for tp, batch in records.items():
            dropped = {r.offset for r in batch if (tp.topic, tp.partition, r.offset) in skip}
            if dropped:
                skip.difference_update((tp.topic, tp.partition, o) for o in dropped)
                records[tp] = [r for r in batch if r.offset not in dropped]
        return records

    return fetch_records


Warehouse._insert = _failing_insert  # type: ignore[method-assign]
if os.environ.get("SURVEIL_TEST_CRASH_CLASSIFY") == "1":
    classify.score = _crashing_model  # type: ignore[assignment]

if spec := os.environ.get("SURVEIL_TEST_SKIP_FETCHED"):
    AIOKafkaConsumerThread._fetch_records = _skipping(spec)  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
