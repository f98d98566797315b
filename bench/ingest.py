"""Parsing throughput per source kind, on the recorded fixtures, against a bare decode.

For each kind the bench parses its fixture files repeatedly (at least ``--seconds`` each)
and reports documents per second for: the bare decode of the same bytes (the baseline:
``feedparser.parse``, ``json.loads``, ``csv.reader`` or ``html.parser`` alone, which is the
floor any parser pays), our parser (normalisation, dates, ids, rejects) and our parser plus
ticker linking. The ratio says what the normalisation costs over the bare decode.

Run: ``.venv/bin/python -m bench.ingest [--seconds 2]``
"""

from __future__ import annotations

import argparse
import csv
import html.parser
import io
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from infra.settings import Settings
from ingest.base import split
from ingest.config import make_source
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.records import utcnow

FILES: dict[str, list[str]] = {
    "rss": [
        "feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml",
        "feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml",
    ],
    "edgar-atom": [
        "edgar/getcurrent_all_forms_start0.atom.xml",
        "edgar/getcurrent_type4_start0.atom.xml",
    ],
    "edgar-index": [
        "edgar/nvda_8k_0001045810-26-000024-index.html",
        "edgar/adbe_8k_0000796343-23-000044-index.html",
        "edgar/blk_8k_0001193125-23-048785-index.html",
        "edgar/jwn_8k_0000072333-23-000015-index.html",
    ],
    "edgar-doc": [
        "edgar/nvda_8k_nvda-20260302.htm",
        "edgar/adbe_8k_adbe-20230315.htm",
        "edgar/blk_8k_0001193125-23-048785.txt",
        "edgar/oracle_8k.html",
        "edgar/buckle_8k_ex99-1_press_release.html",
    ],
    "edgar-submissions": [
        "edgar/submissions_CIK0000789019_MSFT.json",
        "edgar/submissions_CIK0001318605_TSLA.json",
    ],
    "stocktwits": ["social/stocktwits_streams_symbol_AAPL_2020-04-24.json"],
    "tweets": ["social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"],
    "reddit-csv": ["social/reddit_wsb_comments_2024-10-11.csv"],
}


class _Html(html.parser.HTMLParser):
    pass


def _bare(kind: str) -> Callable[[bytes], object]:
    if kind in ("rss", "edgar-atom"):
        return lambda raw: feedparser.parse(raw)
    if kind in ("edgar-submissions", "stocktwits"):
        return json.loads
    if kind == "tweets":
        return lambda raw: [json.loads(line) for line in raw.splitlines() if line.strip()]
    if kind == "reddit-csv":
        return lambda raw: list(csv.reader(io.StringIO(raw.decode("utf-8"))))

    def parse_html(raw: bytes) -> object:
        parser = _Html()
        parser.feed(raw.decode("utf-8", "replace"))
        parser.close()
        return parser

    return parse_html


def _rate(work: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Run ``work`` (which returns documents made) until ``seconds`` pass; docs/s and runs."""
    work()  # warm up imports and caches
    done, runs, start = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 3:
        done += work()
        runs += 1
    return done / elapsed, runs


def main() -> None:
    """Measure and print the table."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--seconds", type=float, default=2.0, help="Time per measurement.")
    opts = args.parse_args()
    logging.disable(logging.WARNING)  # rejects log a line each; not what we measure
    shared = Settings(_env_file=None).shared_dir  # type: ignore[call-arg]
    root = shared / "fixtures"
    started = time.perf_counter()
    linker = Linker(Universe.load(shared))
    load_s = time.perf_counter() - started
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"ticker universe loaded in {load_s * 1000:.0f} ms\n")
    print(
        "| kind | files | docs per pass | bare decode docs/s | parse docs/s | "
        "parse/bare | parse+link docs/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, rels in FILES.items():
        blobs = [(rel, Path(root / rel).read_bytes()) for rel in rels]
        sources = [make_source(kind, "bench", rel) for rel, _ in blobs]
        per_pass = sum(
            len(split(s.parse(raw, utcnow())).documents)
            for s, (_, raw) in zip(sources, blobs, strict=True)
        )
        bare = _bare(kind)

        def bare_pass(bare: Callable[[bytes], object] = bare) -> int:
            for _, raw in blobs:  # noqa: B023 - bound per kind, run before the next
                bare(raw)
            return per_pass  # noqa: B023

        def parse_pass(link: bool = False) -> int:
            made = 0
            for s, (_, raw) in zip(sources, blobs, strict=True):  # noqa: B023
                docs = split(s.parse(raw, utcnow())).documents
                if link:
                    docs = [linker.link(d).doc for d in docs]
                made += len(docs)
            return made

        bare_rate, _ = _rate(bare_pass, opts.seconds)
        parse_rate, _ = _rate(parse_pass, opts.seconds)
        link_rate, _ = _rate(lambda: parse_pass(link=True), opts.seconds)
        print(
            f"| {kind} | {len(rels)} | {per_pass} | {bare_rate:,.0f} | {parse_rate:,.0f} | "
            f"{parse_rate / bare_rate:.2f}x | {link_rate:,.0f} |",
            flush=True,
        )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
