"""End to end: documents preloaded into docs.raw, workers started, time until every row is in
ClickHouse, with one worker (role all), one classify worker and a store worker, and two
classify workers and a store worker; on one broker or a 3-broker cluster (``--brokers 3``).

The documents are texts of ``../shared/datasets/tfns_sentiment.csv`` (financial tweets), each
given one or two tickers of a fixed list. Baseline in the same run: the bare engine scoring
the same texts at the worker's batch size (``SURVEIL_CLASSIFY_BATCH``), with no Kafka, agents
or ClickHouse. Reported per layout: sustained documents/s (from the first scored batch to the
last row stored, so worker start-up is left out), its ratio to the bare engine, and the
largest resident memory of each worker seen while it ran.

Latency (``--latency-documents``, per layout): the workers started first, then documents
published at half the layout's measured rate, each stamped with its publication time; the
store's counters are read every 50 ms. Publication-to-row latency of the k-th document
published is the time the store had stored k documents minus its publication time (order
statistics: exact when documents are stored in the order published, and close to it here,
where partitions are stored within a batch of each other); p50 and p99 are reported.

Run: ``.venv/bin/python -m bench.pipeline [--documents 5000] [--model lexicon] [--brokers 3]``
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine_and_load, package_version, worker_settings
from infra.broker import free_port
from infra.cluster import LocalCluster
from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.producer import DocumentProducer
from streams.records import Document
from streams.topics import ALL_TOPICS, with_prefix
from surveil.compose.runtime import WorkerProcess, load_model
from surveil.demo.run import processed

TICKERS = ("CNTS", "FABR", "NWND", "TLSP", "WWIM", "ADVW", "LUCR", "MRGN", "QTRX", "HLBR")
RULES = "rules:\n  - {name: slump, kind: threshold, threshold: -0.5, min_docs: 20, window: 1h}\n"


LAYOUTS = {
    "one": ["all"],
    "classify1": ["classify", "store"],
    "classify2": ["classify", "classify", "store"],
}


def documents(shared: Path, n: int, seed: int = 7) -> list[Document]:
    """``n`` documents from the tweets data set, published now, with one or two tickers."""
    with (shared / "datasets" / "tfns_sentiment.csv").open(encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    rng, now = random.Random(seed), datetime.now(UTC)  # noqa: S311 - not for secrets
    return [
        Document(
            doc_id=f"bench-{i:07d}",
            source="bench",
            kind="social",
            title=texts[i % len(texts)],
            body="",
            published_at=now,
            fetched_at=now,
            tickers=tuple(rng.sample(TICKERS, rng.randint(1, 2))),
        )
        for i in range(n)
    ]


def bare_engine(settings: Settings, docs: list[Document]) -> float:
    """Documents/s of the model alone at the worker's batch size."""
    classifier = load_model(settings)
    texts, size = [d.text for d in docs], settings.classify_batch
    classifier.classify(texts[:size])  # warm up
    started = time.perf_counter()
    for i in range(0, len(texts), size):
        classifier.classify(texts[i : i + size])
    return len(texts) / (time.perf_counter() - started)


def rss_mb(pid: int | None) -> float:
    """The resident memory of a process in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return 0.0


def _layout(base: Settings, folder: Path, roles: list[str]) -> tuple[Settings, list[WorkerProcess]]:
    """The settings of a layout's run (its own topics) and its workers, not started."""
    namespace = f"{folder.name}."
    settings = base.model_copy(update={"topic_prefix": namespace, "app_id": folder.name})
    ensure_topics(
        settings.bootstrap_servers, with_prefix(namespace, ALL_TOPICS), settings.kafka_partitions
    )
    workers = [
        WorkerProcess(
            settings.model_copy(
                update={
                    "worker_role": role,
                    "state_dir": folder / f"{role}{i}",
                    "web_port": free_port(),
                }
            ),
            {},
            folder / f"{role}{i}.log",
        )
        for i, role in enumerate(roles)
    ]
    return settings, workers


def _store(workers: list[WorkerProcess]) -> WorkerProcess:
    return next(w for w in workers if w.settings.worker_role in ("all", "store"))


def run_layout(
    base: Settings, folder: Path, roles: list[str], docs: list[Document], timeout: float
) -> tuple[float, list[float]]:
    """Preload the documents, start workers of these roles; return documents/s and RSS."""
    settings, workers = _layout(base, folder, roles)
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    try:
        producer.publish(docs)
    finally:
        producer.close()
    for worker in workers:
        worker.start()
    pairs = sum(len(d.tickers) for d in docs)
    try:
        return _measure(_store(workers), workers, processed(len(docs), pairs), len(docs), timeout)
    finally:
        for worker in workers:
            worker.stop()


def run_latency(
    base: Settings,
    folder: Path,
    roles: list[str],
    docs: list[Document],
    rate: float,
    timeout: float,
) -> tuple[float, float, float]:
    """Start the workers, publish ``docs`` at ``rate`` a second (each stamped as it is sent);
    return the rate reached and the p50 and p99 publication-to-row latency in seconds."""
    settings, workers = _layout(base, folder, roles)
    for worker in workers:
        worker.start()
    store = _store(workers)
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    try:
        for worker in workers:  # every worker up, its groups joined, before the clock starts
            worker.wait_answering(timeout)
        _warm(store, producer, docs[0], timeout)
        sent: list[float] = []
        seen: list[tuple[float, int]] = []
        start = time.monotonic()
        i = 0
        while i < len(docs) or not seen or seen[-1][1] < len(docs):
            now = time.monotonic()
            due = min(len(docs), int((now - start) * rate) + 1)  # what is due, caught up
            if i < due:
                stamp, at = datetime.now(UTC), time.monotonic()
                chunk = [d.model_copy(update={"published_at": stamp}) for d in docs[i:due]]
                producer.publish(chunk)
                sent += [at] * len(chunk)
                i += len(chunk)
            stored = store.stats().get("store.documents.seen", 0) - 1  # less the warm-up one
            if not seen or stored > seen[-1][1]:
                seen.append((time.monotonic(), stored))
            if now > start + len(docs) / rate + timeout:
                msg = f"latency run not done within {timeout:.0f} s: {store.stats()}"
                raise SystemExit(msg)
            time.sleep(0.05)
    finally:
        producer.close()
        for worker in workers:
            worker.stop()
    latencies, k = [], 0
    for at, count in seen:
        while k < min(count, len(sent)):
            latencies.append(at - sent[k])
            k += 1
    cuts = statistics.quantiles(latencies, n=100)
    return len(docs) / (sent[-1] - sent[0] or 1e-9), cuts[49], cuts[98]


def _warm(store: WorkerProcess, producer: DocumentProducer, doc: Document, timeout: float) -> None:
    """One document scored and stored first, so that start-up is not counted."""
    stamp = datetime.now(UTC)
    producer.publish(
        [doc.model_copy(update={"doc_id": f"{doc.doc_id}-warm", "published_at": stamp})]
    )
    store.wait_until(lambda s: s.get("store.scores.seen", 0) >= 1, timeout)
    time.sleep(3.0)  # a rebalance the last worker's joining started is over by then


def _measure(
    store: WorkerProcess,
    workers: list[WorkerProcess],
    done: Callable[[dict[str, int]], bool],
    total: int,
    timeout: float,
) -> tuple[float, list[float]]:
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    peaks = [0.0] * len(workers)
    while time.monotonic() < deadline:
        stats = store.stats()
        stored = stats.get("store.documents.seen", 0)
        if first is None and stored:
            first = (time.monotonic(), stored)
        peaks = [max(p, rss_mb(w.pid)) for p, w in zip(peaks, workers, strict=True)]
        if done(stats):
            assert first is not None
            return (total - first[1]) / max(time.monotonic() - first[0], 1e-9), peaks
        time.sleep(0.25)
    msg = f"not done within {timeout:.0f} s: {store.stats()}"
    raise SystemExit(msg)


def main() -> None:
    """Run every layout and print their figures against the bare engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--model", default="lexicon", help="lexicon, or an artifact folder")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--brokers", type=int, default=1, choices=(1, 3))
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"of {', '.join(LAYOUTS)}")
    parser.add_argument(
        "--latency-documents",
        type=int,
        default=0,
        help="documents published at half each layout's rate for its latency (0: none)",
    )
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    if args.brokers == 1:
        kafka = LocalCluster(home / "kafka", [(free_port(), free_port())], heap="1g")
    else:
        kafka = LocalCluster(
            home / "kafka", [(free_port(), free_port()) for _ in range(3)], heap="512m"
        )
    kafka.start()
    try:
        base = worker_settings(
            home, kafka.bootstrap, 4, RULES, model=args.model, shared_dir=args.shared.resolve()
        )
        docs = documents(args.shared, args.documents)
        bare = bare_engine(base, docs)
        print(
            f"# bench.pipeline: {len(docs)} documents, model {args.model}, "
            f"batch {base.classify_batch}, 4 partitions, {args.brokers} broker(s); "
            f"faust-streaming {package_version('faust-streaming')}, chdb {package_version('chdb')}"
        )
        print(f"bare engine: {bare:,.0f} documents/s")
        for name in args.layouts.split(","):
            roles = LAYOUTS[name]
            rate, peaks = run_layout(base, home / name, roles, docs, args.timeout)
            rss = ", ".join(f"{r} {p:,.0f} MiB" for r, p in zip(roles, peaks, strict=True))
            print(
                f"{' + '.join(roles)}: {rate:,.0f} documents/s end to end "
                f"({rate / bare:.2f}x the bare engine); RSS {rss}"
            )
            if args.latency_documents and rate > 0:
                paced = documents(args.shared, args.latency_documents, seed=11)
                reached, p50, p99 = run_latency(
                    base, home / f"{name}-latency", roles, paced, rate / 2, args.timeout
                )
                print(
                    f"  at {reached:,.0f} documents/s ({reached / rate:.2f}x its rate): "
                    f"publication to row p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms"
                )
        print(machine_and_load(load_at_start))
    finally:
        kafka.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
