"""End to end: documents preloaded into docs.raw, workers started, time until every row is in
ClickHouse, with one worker (role all) and with two classify workers and a store worker.

The documents are texts of ``../shared/datasets/tfns_sentiment.csv`` (financial tweets), each
given one or two tickers of a fixed list. Baseline in the same run: the bare engine scoring
the same texts at the worker's batch size (``SURVEIL_CLASSIFY_BATCH``), with no Kafka, agents
or ClickHouse. Reported per layout: sustained documents/s (from the first scored batch to the
last row stored, so worker start-up is left out), its ratio to the bare engine, and the
largest resident memory of each worker seen while it ran.

Run: ``.venv/bin/python -m bench.pipeline [--documents 5000] [--model lexicon]``
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine_and_load, package_version, worker_settings
from infra.broker import BrokerConfig, LocalKafka, free_port
from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.producer import DocumentProducer
from streams.records import Document
from streams.topics import ALL_TOPICS, with_prefix
from surveil.compose.runtime import WorkerProcess, load_model
from surveil.demo.run import processed

TICKERS = ("CNTS", "FABR", "NWND", "TLSP", "WWIM", "ADVW", "LUCR", "MRGN", "QTRX", "HLBR")
RULES = "rules:\n  - {name: slump, kind: threshold, threshold: -0.5, min_docs: 20, window: 1h}\n"


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


def run_layout(
    base: Settings, folder: Path, roles: list[str], docs: list[Document], timeout: float
) -> tuple[float, list[float]]:
    """Preload the documents, start workers of these roles; return documents/s and RSS."""
    namespace = f"{folder.name}."
    settings = base.model_copy(update={"topic_prefix": namespace, "app_id": folder.name})
    topics = with_prefix(namespace, ALL_TOPICS)
    ensure_topics(settings.bootstrap_servers, topics, settings.kafka_partitions)
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=namespace)
    try:
        producer.publish(docs)
    finally:
        producer.close()
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
    for worker in workers:
        worker.start()
    store = next(w for w in workers if w.settings.worker_role in ("all", "store"))
    pairs = sum(len(d.tickers) for d in docs)
    try:
        return _measure(store, workers, processed(len(docs), pairs), len(docs), timeout)
    finally:
        for worker in workers:
            worker.stop()


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
    """Run both layouts and print their figures against the bare engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--model", default="lexicon", help="lexicon, or an artifact folder")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    kafka = LocalKafka(
        BrokerConfig(home=home / "kafka", port=free_port(), controller_port=free_port())
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
            f"batch {base.classify_batch}, 4 partitions, 1 broker; faust-streaming "
            f"{package_version('faust-streaming')}, chdb {package_version('chdb')}"
        )
        print(f"bare engine: {bare:,.0f} documents/s")
        for name, roles in (("one", ["all"]), ("split", ["classify", "classify", "store"])):
            rate, peaks = run_layout(base, home / name, roles, docs, args.timeout)
            rss = ", ".join(f"{r} {p:,.0f} MiB" for r, p in zip(roles, peaks, strict=True))
            print(
                f"{' + '.join(roles)}: {rate:,.0f} documents/s end to end "
                f"({rate / bare:.2f}x the bare engine); RSS {rss}"
            )
        print(machine_and_load(load_at_start))
    finally:
        kafka.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
