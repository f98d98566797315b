"""ClickHouse store: insert throughput into scores, and sentiment series from the rollup or raw.

```
.venv/bin/python -m bench.store [--rows 200000] [--batches 500,5000,50000] [--naive-rows 2000]
    [--store-rows 5000] [--tickers 500] [--query-rows 10000000] [--days 91] [--runs 5]
    [--dsn chdb:///path | http://host:8123]
```

Inserts: scored rows through clickhouse-connect into ``scores`` (the materialized view feeds
``sentiment_1m`` as in production), in batches of 500, 5,000 and 50,000 rows, against one
INSERT per row in the same run; then ``Store.write_scores`` (dedup check + insert) in batches
of 500, on a fresh table and on the big one. Queries: ``--query-rows`` scores generated inside
ClickHouse day by day, then a one-month series of one and ten tickers at 1min, 1h and 1d from
the rollup (``surveil.quant.series.sentiment``), from the raw scores (its ``as_of`` path, FINAL) and
from a plain GROUP BY on the raw scores (no FINAL); median of ``--runs`` after one warm-up.
Without ``--dsn`` it runs on chDB in a temporary folder, deleted afterwards; with one, it
works in its own ``surveil_bench_*`` databases and drops them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import cpu_model, load_average, package_version, whole_run
from bench.storedata import START, generate, scored_rows, symbols
from infra.db import Parameters, Table, Warehouse, connect, redact
from streams.ledger import ClickHouseRanges, Ledger
from streams.records import Scored
from streams.steps import Where
from streams.store import SCORE_COLUMNS, Store
from surveil.quant.base import READ_ONLY, Reader
from surveil.quant.series import sentiment
from surveil.quant.times import parse_freq

MONTH = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
FREQS = ("1min", "1h", "1d")


class TimedWarehouse(Warehouse):
    """A warehouse that adds up the seconds spent in queries (the store's dedup checks)."""

    query_s = 0.0

    def rows(self, sql: str, parameters: Parameters = None) -> list[tuple[Any, ...]]:
        """Run a query; return its rows, timed."""
        t0 = time.perf_counter()
        try:
            return super().rows(sql, parameters)
        finally:
            self.query_s += time.perf_counter() - t0


class Bench:
    """The open client and the databases this run created (dropped at the end)."""

    def __init__(self, dsn: str) -> None:
        self.client = connect(dsn)
        self.prefix = f"surveil_bench_{os.getpid()}"
        self.created: list[str] = []

    @contextmanager
    def database(self, name: str) -> Iterator[TimedWarehouse]:
        """Yield a migrated warehouse in a fresh database; drop it on the way out."""
        wh = TimedWarehouse(self.client, f"{self.prefix}_{name}")
        wh.command("DROP DATABASE IF EXISTS {db} SYNC")
        wh.migrate()
        self.created.append(wh.database)
        try:
            yield wh
        finally:
            self.drop(wh)

    def drop(self, wh: Warehouse) -> None:
        """Drop a database made by ``database``."""
        wh.command("DROP DATABASE IF EXISTS {db} SYNC")
        self.created.remove(wh.database)

    def close(self) -> None:
        """Drop what is left and close the client."""
        for name in list(self.created):
            self.drop(Warehouse(self.client, name))
        self.client.close()


def as_lists(records: Sequence[Scored]) -> list[list[Any]]:
    """Return the rows the way ``Store.write_scores`` hands them to the client."""
    return [[getattr(r, column) for column in SCORE_COLUMNS] for r in records]


def batched(bench: Bench, rows: list[list[Any]], batch: int) -> tuple[float, list[float]]:
    """Insert ``rows`` in inserts of ``batch``; return rows/s and each insert's seconds."""
    with bench.database(f"batch{batch}") as wh:
        latencies = []
        for start in range(0, len(rows), batch):
            t0 = time.perf_counter()
            wh.insert("scores", rows[start : start + batch], SCORE_COLUMNS)
            latencies.append(time.perf_counter() - t0)
        assert wh.rows("SELECT count() FROM {db}.scores")[0][0] == len(rows)
    return len(rows) / sum(latencies), latencies


def store_path(wh: TimedWarehouse, records: Sequence[Scored], batch: int) -> tuple[float, float]:
    """Write ``records`` through ``Store.write_scores``; return rows/s and the dedup share."""
    store = Store(wh)
    wh.query_s = 0.0
    t0 = time.perf_counter()
    written = sum(store.write_scores(records[s : s + batch]) for s in range(0, len(records), batch))
    elapsed = time.perf_counter() - t0
    assert written == len(records), (written, len(records))
    return len(records) / elapsed, wh.query_s / elapsed


def ledger_path(
    wh: Warehouse, records: Sequence[Scored], insert_rows: int, take: int = 500, partitions: int = 3
) -> tuple[float, int]:
    """Write ``records`` as the store agent does: takes of ``take`` records from a topic of
    ``partitions`` (keyed by ticker) into `streams.ledger.Ledger`, inserts of up to
    ``insert_rows`` per partition under their range's token, and the record of each range.
    Then deliver everything again (a whole redelivery after a restart). Return rows/s of the
    first pass and the rows the second added (0 when exactly once)."""
    store = Store(wh)
    topic = f"bench-{insert_rows}"
    offsets = [0] * partitions
    located = []
    for record in records:
        partition = zlib.crc32(record.ticker.encode()) % partitions
        located.append((Where(topic, partition, offsets[partition]), record, None))
        offsets[partition] += 1

    def deliver() -> float:
        ledger: Ledger[Scored] = Ledger(
            "scores", ClickHouseRanges(wh), insert_rows, 1.0, key=lambda r: (r.doc_id, r.ticker)
        )
        t0 = time.perf_counter()
        for start in range(0, len(located), take):
            ledger.add(located[start : start + take], now=time.monotonic())
            ledger.write(store.insert_scores, now=time.monotonic())
        ledger.write(store.insert_scores, now=time.monotonic(), flush=True)
        return time.perf_counter() - t0

    count = "SELECT count() FROM {db}.scores"
    before = wh.rows(count)[0][0]
    elapsed = deliver()
    after = wh.rows(count)[0][0]
    assert after - before == len(records), (after - before, len(records))
    deliver()
    return len(records) / elapsed, wh.rows(count)[0][0] - after


RAW = """
    SELECT ticker, toStartOfInterval(published_at, INTERVAL {step} MINUTE, 'UTC') AS bucket,
           count() AS n, sum(toFloat64(score)) / n, countIf(label = 'negative') / n,
           if(sum(relevance) > 0,
              sum(toFloat64(score) * relevance) / sum(toFloat64(relevance)), NULL)
    FROM {{db}}.scores
    WHERE ticker IN {{tickers:Array(String)}}
      AND published_at >= {{start:DateTime64(3, 'UTC')}}
      AND published_at < {{end:DateTime64(3, 'UTC')}}
    GROUP BY ticker, bucket
    ORDER BY ticker, bucket
"""


def raw_group_by(reader: Reader, tickers: Sequence[str], freq: str) -> pd.DataFrame:
    """Return the series straight from the raw scores with a plain GROUP BY (no FINAL)."""
    sql = RAW.format(step=parse_freq(freq).minutes)
    params = {"tickers": list(tickers), "start": MONTH[0], "end": MONTH[1]}
    _, rows = reader.query(sql, params, READ_ONLY)
    return pd.DataFrame(rows)


class Recorder:
    """A quant reader that keeps the SQL it is given and returns no rows."""

    def __init__(self) -> None:
        self.sql = ""
        self.parameters: dict[str, Any] = {}

    def query(self, sql: str, parameters: Parameters = None, settings: Parameters = None) -> Table:
        """Keep the query; return no rows."""
        self.sql, self.parameters = sql, parameters or {}
        return [], []


def engine_only(wh: Warehouse, series: Callable[[Recorder], object]) -> Callable[[], None]:
    """Return a call running the SQL of ``series`` with ``FORMAT Null`` (no transfer, no pandas)."""
    recorder = Recorder()
    series(recorder)
    sql = recorder.sql.replace("{db}", wh.database)

    def call() -> None:
        wh.client.raw_query(sql, parameters=recorder.parameters, fmt="Null")

    return call


def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Run ``call`` once to warm up, then ``runs`` times; return the median ms and a result."""
    frame = call()
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds) * 1000, frame


def parts(wh: Warehouse) -> dict[str, tuple[int, int, int, int]]:
    """Return active parts, rows, bytes on disk and uncompressed bytes of scores and the rollup."""
    rows = wh.rows(
        "SELECT table, count(), sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) "
        "FROM system.parts WHERE database = {d:String} AND active "
        "AND table IN ('scores', 'sentiment_1m') GROUP BY table",
        {"d": wh.database},
    )
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows per insert benchmark")
    parser.add_argument("--batches", default="500,5000,50000", help="rows per insert")
    parser.add_argument("--naive-rows", type=int, default=2_000, help="rows inserted one by one")
    parser.add_argument("--store-rows", type=int, default=5_000, help="write_scores, big table")
    parser.add_argument("--ledger-rows", type=int, default=200_000, help="ledger, big table")
    parser.add_argument("--insert-rows", type=int, default=5_000, help="ledger insert size")
    parser.add_argument("--only-big", action="store_true", help="skip the insert table, queries")
    parser.add_argument("--tickers", type=int, default=500, help="tickers, Zipf-like popularity")
    parser.add_argument("--query-rows", type=int, default=10_000_000, help="scores to query")
    parser.add_argument("--days", type=int, default=91, help="days the queried scores span")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query")
    parser.add_argument("--dsn", help="a ClickHouse server (default: chDB in a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with whole_run(prefix="\n# "):
        folder = None if args.dsn else Path(tempfile.mkdtemp(prefix="surveil-bench-store-"))
        dsn = args.dsn or f"chdb://{folder}/ch"
        tickers = symbols(args.tickers, args.seed)
        try:
            bench = Bench(dsn)
            try:
                run(bench, args, tickers, dsn)
            finally:
                bench.close()
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def run(bench: Bench, args: argparse.Namespace, tickers: list[str], dsn: str) -> None:
    """Run both parts and print their tables."""
    server = bench.client.query("SELECT version()").result_rows[0][0]
    print(
        f"# machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load_average()}"
    )
    print(
        f"# store: {redact(dsn)} (ClickHouse {server}), chdb {package_version('chdb')}, "
        f"clickhouse-connect {package_version('clickhouse-connect')}"
    )
    if args.only_big:
        with bench.database("big") as wh:
            generate(wh, args.query_rows, tickers, args.days)
            print(f"# {args.query_rows:,} scores generated; load average {load_average()}")
            write_into(wh, args, tickers, naive_rate=None)
        return
    naive_rate = inserts(bench, args, tickers)
    query_part(bench, args, tickers, naive_rate)


def inserts(bench: Bench, args: argparse.Namespace, tickers: list[str]) -> float:
    """Time inserts of every batch size against one per row; print them, return the naive rows/s."""
    t0 = time.perf_counter()
    records = scored_rows(args.rows, tickers, 30, args.seed)
    rows = as_lists(records)
    print(
        f"# insert rows: {len(rows):,} Scored over 30 days, {len(tickers)} tickers "
        f"(Zipf-like, top ticker {sum(r.ticker == tickers[0] for r in records) / len(rows):.1%}), "
        f"{len({r.doc_id for r in records}):,} documents; built in {time.perf_counter() - t0:.1f} s"
    )
    batched(bench, rows[:1000], 1000)  # warm-up: first parts, the view, the client's paths
    print("\n| path | rows | rows per insert | rows/s | vs naive | p50 ms/insert | max ms/insert |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    naive_rows = rows[: args.naive_rows]
    naive_rate, naive_lat = batched(bench, naive_rows, 1)
    _row("one INSERT per row (naive)", len(naive_rows), 1, naive_rate, naive_rate, naive_lat)
    for batch in (int(b) for b in args.batches.split(",")):
        rate, lat = batched(bench, rows, batch)
        _row("clickhouse-connect insert", len(rows), batch, rate, naive_rate, lat)
    with bench.database("store") as wh:
        rate, dedup = store_path(wh, records, 500)
    print(
        f"| Store.write_scores, empty table (dedup {dedup:.0%} of time) | {len(records):,} | 500 "
        f"| {rate:,.0f} | {rate / naive_rate:.1f}x | | |",
        flush=True,
    )
    return naive_rate


def query_part(
    bench: Bench, args: argparse.Namespace, tickers: list[str], naive_rate: float
) -> None:
    """Generate the big table in ClickHouse, time the series on it, then writes into it."""
    t0 = time.perf_counter()
    with bench.database("query") as wh:
        generate(wh, args.query_rows, tickers, args.days)
        gen_s = time.perf_counter() - t0
        print(
            f"\n# query data: {args.query_rows:,} scores generated in ClickHouse in {gen_s:.1f} s "
            f"({args.query_rows / gen_s:,.0f} rows/s, one INSERT ... SELECT per day through the "
            f"view) over {args.days} days starting {START:%Y-%m-%d}; queries over "
            f"[{MONTH[0]:%Y-%m-%d}, {MONTH[1]:%Y-%m-%d}); load average {load_average()}"
        )
        queries(wh, tickers, args.runs)
        for table, (count, nrows, disk, raw) in sorted(parts(wh).items()):
            print(
                f"# {table}: {nrows:,} rows in {count} active parts, {_mb(disk)} on disk "
                f"({_mb(raw)} uncompressed, {disk / max(nrows, 1):.1f} bytes/row)"
            )
        write_into(wh, args, tickers, naive_rate)


def write_into(
    wh: TimedWarehouse, args: argparse.Namespace, tickers: list[str], naive_rate: float | None
) -> None:
    """Time the store's writes into the big table: the read-before-write path, and the
    exactly-once path with inserts of 500 rows and of ``--insert-rows``."""
    big = scored_rows(args.store_rows, tickers, 30, args.seed + 1)
    rate, dedup = store_path(wh, big, 500)
    naive = f", {rate / naive_rate:.1f}x naive" if naive_rate else ""
    print(
        f"# Store.write_scores (reads, then writes) into this table, {len(big):,} rows in "
        f"batches of 500: {rate:,.0f} rows/s (dedup query {dedup:.0%} of the time{naive}); "
        f"load average {load_average()}"
    )
    for n, insert_rows in enumerate((500, args.insert_rows)):
        # Rows of their own: the same pairs again would be merged away under the count.
        ledger_rows = scored_rows(args.ledger_rows, tickers, 30, args.seed + 2 + n)
        fast, again = ledger_path(wh, ledger_rows, insert_rows)
        print(
            f"# exactly once (streams.ledger) into this table, {len(ledger_rows):,} rows in takes "
            f"of 500 from 3 partitions, inserts of up to {insert_rows:,} rows: {fast:,.0f} rows/s "
            f"({fast / rate:.1f}x write_scores); delivered again: {again} rows added; "
            f"load average {load_average()}"
        )


def queries(wh: Warehouse, tickers: Sequence[str], runs: int) -> None:
    """Time the month's series of the top ticker and the top ten by each path; print a table."""
    in_month = (
        "SELECT count() FROM {db}.scores WHERE ticker IN {t:Array(String)} "
        "AND published_at >= {s:DateTime64(3, 'UTC')} AND published_at < {e:DateTime64(3, 'UTC')}"
    )
    print(
        "\n| tickers | raw rows in month | freq | buckets | rollup ms | raw as_of ms (FINAL) "
        "| raw GROUP BY ms | as_of / rollup | GROUP BY / rollup "
        "| engine only ms: rollup / as_of / GROUP BY |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    now = datetime.now(UTC)
    one, ten = list(tickers[:1]), list(tickers[:10])
    for names, label in ((one, f"1 ({one[0]}, most popular)"), (ten, "10 most popular")):
        scanned = wh.rows(in_month, {"t": names, "s": MONTH[0], "e": MONTH[1]})[0][0]
        for freq in FREQS:
            series = partial(sentiment, tickers=names, start=MONTH[0], end=MONTH[1], freq=freq)
            paths: list[Callable[[Reader], pd.DataFrame]] = [
                series,
                partial(series, as_of=now),
                partial(raw_group_by, tickers=names, freq=freq),
            ]
            results = [timed(partial(path, wh), runs) for path in paths]
            engine = [timed(engine_only(wh, path), runs)[0] for path in paths]
            (roll, frame), (asof, check), (plain, _) = results
            assert frame["documents"].sum() == check["documents"].sum() == scanned
            assert len(frame) == len(check)
            print(
                f"| {label} | {scanned:,} | {freq} | {len(frame):,} | {roll:.1f} | {asof:.1f} "
                f"| {plain:.1f} | {asof / roll:.1f}x | {plain / roll:.1f}x "
                f"| {' / '.join(f'{ms:.1f}' for ms in engine)} |",
                flush=True,
            )


def _row(
    path: str, rows: int, batch: int, rate: float, naive_rate: float, lat: list[float]
) -> None:
    print(
        f"| {path} | {rows:,} | {batch:,} | {rate:,.0f} | {rate / naive_rate:.1f}x "
        f"| {statistics.median(lat) * 1000:.1f} | {max(lat) * 1000:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
