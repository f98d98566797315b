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
the rollup (``infra.quant.sentiment``), from the raw scores (its ``as_of`` path, FINAL) and
from a plain GROUP BY on the raw scores (no FINAL); median of ``--runs`` after one warm-up.
Without ``--dsn`` it runs on chDB in a temporary folder, deleted afterwards; with one, it
works in its own ``surveil_bench_*`` databases and drops them.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from infra.db import Warehouse, connect, redact
from infra.quant import READ_ONLY, Reader, parse_freq, sentiment
from streams.records import Kind, Label, Scored
from streams.store import SCORE_COLUMNS, Store

START = datetime(2026, 8, 3, tzinfo=UTC)  # a Monday: day d is a weekday when d % 7 < 5
MONTH = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
SESSION = (13 * 3600 + 1800, 20 * 3600)  # US regular session in UTC (summer time), seconds
IN_SESSION = 0.7  # share of a weekday's documents published during the session
WEEKEND_WEIGHT = 0.3  # a weekend day's volume against a weekday's
KINDS: tuple[tuple[Kind, str, float], ...] = (
    ("news", "rss", 0.5),
    ("social", "stocktwits", 0.25),
    ("social", "reddit", 0.15),
    ("filing", "edgar", 0.1),
)
EVENTS = ("none",) * 7 + ("earnings", "analyst_update", "company_product_news")
MODEL = "small-20261123-094b2ff6"
FREQS = ("1min", "1h", "1d")


def symbols(count: int, seed: int) -> list[str]:
    """Return ``count`` distinct made-up ticker symbols of one to five letters, by popularity."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    found: dict[str, None] = {}
    while len(found) < count:
        size = rng.choice((1, 2, 3, 3, 4, 4, 4, 5))
        found.setdefault("".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=size)))
    return list(found)


def day_weights(days: int) -> list[float]:
    """Return each day's share of the volume: weekdays 1, weekends ``WEEKEND_WEIGHT``."""
    weights = [1.0 if d % 7 < 5 else WEEKEND_WEIGHT for d in range(days)]
    total = sum(weights)
    return [w / total for w in weights]


def moment(rng: random.Random, day: int) -> datetime:
    """Return a publication time on ``day`` (from START), most weekday ones in the session."""
    if day % 7 < 5 and rng.random() < IN_SESSION:
        second = rng.uniform(*SESSION)
    else:
        second = rng.uniform(0, 86_400)
    return START + timedelta(days=day, seconds=second)


def scored_rows(count: int, tickers: Sequence[str], days: int, seed: int) -> list[Scored]:
    """Return ``count`` realistic scores: Zipf-like ticker popularity, over ``days`` days.

    A fifth of the documents name two or three tickers, so (doc_id, ticker) pairs share ids.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    popularity = [1 / rank for rank in range(1, len(tickers) + 1)]
    weights = day_weights(days)
    rows: list[Scored] = []
    while len(rows) < count:
        day = rng.choices(range(days), weights)[0]
        published = moment(rng, day)
        kind, source, _ = rng.choices(KINDS, [k[2] for k in KINDS])[0]
        doc_id = f"{rng.getrandbits(128):032x}"
        names = rng.choices(tickers, popularity, k=rng.choices((1, 2, 3), (0.8, 0.15, 0.05))[0])
        for ticker in dict.fromkeys(names):
            a, b, c = rng.expovariate(1), rng.expovariate(1) * 1.5, rng.expovariate(1)
            p_neg, p_neu, p_pos = a / (a + b + c), b / (a + b + c), c / (a + b + c)
            label: Label = "negative" if p_neg >= max(p_neu, p_pos) else "neutral"
            if p_pos > max(p_neg, p_neu):
                label = "positive"
            fetched = published + timedelta(seconds=rng.uniform(1, 120))
            rows.append(
                Scored(
                    doc_id=doc_id,
                    ticker=ticker,
                    kind=kind,
                    source=source,
                    published_at=published,
                    fetched_at=fetched,
                    label=label,
                    p_negative=p_neg,
                    p_neutral=p_neu,
                    p_positive=p_pos,
                    score=max(-1.0, min(1.0, p_pos - p_neg)),
                    event_type=rng.choice(EVENTS),
                    event_prob=rng.random(),
                    relevance=rng.uniform(0.3, 1.0),
                    model_version=MODEL,
                    scored_at=fetched + timedelta(seconds=rng.uniform(0.05, 2)),
                )
            )
    # arrival order: a stream batch holds documents published about the same time
    return sorted(rows[:count], key=lambda r: r.published_at)


class TimedWarehouse(Warehouse):
    """A warehouse that adds up the seconds spent in queries (the store's dedup checks)."""

    query_s = 0.0

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
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


def _u(salt: int) -> str:
    """Return SQL for a uniform draw in [0, 1) from the row number, reproducible."""
    return f"(cityHash64(number, {salt}) / 18446744073709551616.0)"


GENERATE = f"""
INSERT INTO {{db}}.scores ({", ".join(SCORE_COLUMNS)})
SELECT doc_id, ticker, kind, source, published_at,
       published_at + toIntervalMillisecond(fetch_ms), label, p_neg, p_neu, p_pos,
       p_pos - p_neg, event_type, event_prob, relevance, '{MODEL}',
       published_at + toIntervalMillisecond(fetch_ms + score_ms)
FROM (
    SELECT
        lower(concat(hex(cityHash64(number, 0)), hex(cityHash64(number, 1)))) AS doc_id,
        {{tickers:Array(String)}}[toUInt32(least({{n:UInt32}},
            floor(exp({_u(2)} * log({{n:UInt32}} + 1)))))] AS ticker,
        multiIf({_u(3)} < 0.5, 'news', {_u(3)} < 0.9, 'social', 'filing') AS kind,
        multiIf({_u(3)} < 0.5, 'rss', {_u(3)} < 0.75, 'stocktwits', {_u(3)} < 0.9, 'reddit',
                'edgar') AS source,
        toDateTime64({{day:DateTime('UTC')}}, 3, 'UTC')
            + toIntervalMillisecond(toUInt64(1000 * if({{weekday:UInt8}} AND {_u(4)} < {IN_SESSION},
                {SESSION[0]} + {_u(5)} * {SESSION[1] - SESSION[0]}, {_u(5)} * 86400)))
            AS published_at,
        toUInt32(1000 + {_u(6)} * 119000) AS fetch_ms,
        toUInt32(50 + {_u(11)} * 1950) AS score_ms,
        -log({_u(7)} + 1e-12) AS a, -log({_u(8)} + 1e-12) * 1.5 AS b, -log({_u(9)} + 1e-12) AS c,
        toFloat32(a / (a + b + c)) AS p_neg, toFloat32(b / (a + b + c)) AS p_neu,
        toFloat32(c / (a + b + c)) AS p_pos,
        multiIf(p_neg >= greatest(p_neu, p_pos), 'negative', p_pos > p_neu, 'positive',
                'neutral') AS label,
        ['{"', '".join(EVENTS)}'][1 + cityHash64(number, 10) % {len(EVENTS)}] AS event_type,
        toFloat32({_u(12)}) AS event_prob,
        toFloat32(0.3 + 0.7 * {_u(13)}) AS relevance
    FROM numbers({{offset:UInt64}}, {{count:UInt64}})
)
"""  # noqa: S608 - constants of this module; values are bound parameters


def generate(wh: Warehouse, rows: int, tickers: Sequence[str], days: int) -> None:
    """Insert ``rows`` scores inside ClickHouse, one INSERT per day as they would arrive.

    Ticker ranks are log-uniform (P(rank k) ~ 1/k, Zipf with exponent 1).
    """
    offset = 0
    for day, weight in enumerate(day_weights(days)):
        count = rows - offset if day == days - 1 else round(rows * weight)
        params = {
            "tickers": list(tickers),
            "n": len(tickers),
            "day": START + timedelta(days=day),
            "weekday": int(day % 7 < 5),
            "offset": offset,
            "count": count,
        }
        wh.command(GENERATE, params)
        offset += count


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

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
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


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    """Return the 1-minute load average: other work on the machine skews every number here."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


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
    parser.add_argument("--tickers", type=int, default=500, help="tickers, Zipf-like popularity")
    parser.add_argument("--query-rows", type=int, default=10_000_000, help="scores to query")
    parser.add_argument("--days", type=int, default=91, help="days the queried scores span")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query")
    parser.add_argument("--dsn", help="a ClickHouse server (default: chDB in a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    load_at_start = _load()
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
    elapsed = time.perf_counter() - started
    print(f"\n# {elapsed:.0f} s in all; load average {_load()} (at the start {load_at_start})")


def run(bench: Bench, args: argparse.Namespace, tickers: list[str], dsn: str) -> None:
    """Run both parts and print their tables."""
    server = bench.client.query("SELECT version()").result_rows[0][0]
    print(
        f"# machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {_load()}"
    )
    print(
        f"# store: {redact(dsn)} (ClickHouse {server}), chdb {_version('chdb')}, "
        f"clickhouse-connect {_version('clickhouse-connect')}"
    )

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

    t0 = time.perf_counter()
    with bench.database("query") as wh:
        generate(wh, args.query_rows, tickers, args.days)
        gen_s = time.perf_counter() - t0
        print(
            f"\n# query data: {args.query_rows:,} scores generated in ClickHouse in {gen_s:.1f} s "
            f"({args.query_rows / gen_s:,.0f} rows/s, one INSERT ... SELECT per day through the "
            f"view) over {args.days} days starting {START:%Y-%m-%d}; queries over "
            f"[{MONTH[0]:%Y-%m-%d}, {MONTH[1]:%Y-%m-%d}); load average {_load()}"
        )
        queries(wh, tickers, args.runs)
        for table, (count, nrows, disk, raw) in sorted(parts(wh).items()):
            print(
                f"# {table}: {nrows:,} rows in {count} active parts, {_mb(disk)} on disk "
                f"({_mb(raw)} uncompressed, {disk / max(nrows, 1):.1f} bytes/row)"
            )
        big = scored_rows(args.store_rows, tickers, 30, args.seed + 1)
        rate, dedup = store_path(wh, big, 500)
        print(
            f"# Store.write_scores into this {args.query_rows:,}-row table, {len(big):,} rows in "
            f"batches of 500: {rate:,.0f} rows/s (dedup query {dedup:.0%} of the time, "
            f"{rate / naive_rate:.1f}x naive)"
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
