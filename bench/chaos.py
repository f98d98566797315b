"""Chaos: kill -9 the worker at random moments and the broker once, under sustained load.

Starts a local Kafka broker, a real worker (lexicon model, chDB) and a Slack-compatible
receiver on 127.0.0.1, then publishes generated documents (made up here, one to three
tickers each) at a steady rate from a thread. Meanwhile it kills the worker with SIGKILL at
random moments (``--kills``, at least five) and restarts it, and once kills the broker with
SIGKILL and starts it again. When the load is done, a last worker runs until the group's
commits reach the end of every topic.

Then it reconciles what ClickHouse and the receiver hold against what docs.raw holds:

- documents: every distinct doc_id of docs.raw stored once;
- scores: every (document, ticker) pair stored once, and the per-minute rollup sums to the
  number of pairs (a duplicated insert would count twice there, whatever merges did);
- alerts: every notification of the outbox delivered, each exactly once (successful
  attempts per notification and channel), and in the ClickHouse alerts table.

The last line is ``lost N, duplicated M``. Baseline in the same run: the documents per second
of an undisturbed stretch of load against the whole run's.

Run: ``.venv/bin/python -m bench.chaos [--documents 5000] [--rate 60] [--kills 5] [--seed 7]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.serializer import JsonSerializer

from bench.common import machine_and_load, worker_settings
from infra.broker import BrokerConfig, LocalKafka, free_port
from infra.errors import SurveilError
from infra.settings import Settings
from ingest.producer import DocumentProducer
from streams.records import Document
from streams.topics import ALERTS, DOCS_RAW, DOCS_SCORED
from surveil.compose.runtime import WorkerProcess, open_warehouse, outbox_path
from surveil.demo.receiver import WebhookReceiver

TICKERS = ("CNTS", "FABR", "NWND", "TLSP", "WWIM", "ADVW", "LUCR", "MRGN")
GOOD = ("beats estimates", "raises guidance", "wins a large contract", "posts record revenue")
BAD = ("misses estimates", "cuts guidance", "faces a fraud probe", "plunges on weak demand")
RULES = """\
route: {group_wait: 2s, group_interval: 5s, repeat_interval: 4h}
rules:
  - name: mean_score_low
    kind: threshold
    threshold: -0.2
    min_docs: 5
    window: 1h
"""


def documents(n: int, rng: random.Random) -> list[Document]:
    """Generated news documents published now, negative in bursts so that rules fire."""
    out = []
    for i in range(n):
        tickers = tuple(rng.sample(TICKERS, rng.randint(1, 3)))
        phrase = rng.choice(BAD if (i // 200) % 3 == 0 else GOOD + BAD)
        now = datetime.now(UTC)
        out.append(
            Document(
                doc_id=f"chaos-{i:06d}",
                source="chaos-wire",
                kind="news",
                title=f"{tickers[0]} {phrase}",
                body=f"Shares of {', '.join(tickers)} moved after the company {phrase}.",
                published_at=now,
                fetched_at=now,
                tickers=tickers,
            )
        )
    return out


class Publisher(threading.Thread):
    """Publish documents at a steady rate; a failed publish is retried, never skipped."""

    def __init__(self, bootstrap: str, docs: list[Document], rate: float) -> None:
        super().__init__(name="publisher", daemon=True)
        self.bootstrap, self.docs, self.rate = bootstrap, docs, rate
        self.sent = 0
        self.retries = 0
        self.started_at = self.ended_at = 0.0

    def run(self) -> None:
        self.started_at = time.monotonic()
        producer = DocumentProducer(self.bootstrap)
        try:
            for doc in self.docs:
                while True:
                    try:
                        producer.publish([doc])
                        break
                    except SurveilError:  # the broker is down: wait and send again
                        self.retries += 1
                        time.sleep(1.0)
                self.sent += 1
                time.sleep(1 / self.rate)
        finally:
            producer.close()
            self.ended_at = time.monotonic()


def crash_reason(log: Path) -> str:
    """The last error a worker logged, e.g. why its agent crashed."""
    errors = [line for line in log.read_text("utf-8", "replace").splitlines() if "ERROR" in line]
    return errors[-1][:300] if errors else "no error logged"


def lag(settings: Settings, topics: list[str]) -> int:
    """Messages of the topics past the worker group's committed offsets."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    try:
        total = 0
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            for tp, end in consumer.end_offsets(parts).items():
                total += end - (consumer.committed(tp) or 0)
        return total
    finally:
        consumer.close()


def raw_pairs(bootstrap: str) -> tuple[set[str], set[tuple[str, str]], int]:
    """The distinct documents and (document, ticker) pairs docs.raw holds, and its messages."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        value_deserializer=JsonSerializer(),
        consumer_timeout_ms=5000,
        auto_offset_reset="earliest",
    )
    consumer.subscribe([DOCS_RAW])
    docs: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    messages = 0
    for record in consumer:
        messages += 1
        docs.add(record.value["doc_id"])
        pairs |= {(record.value["doc_id"], t) for t in record.value["tickers"]}
    consumer.close()
    return docs, pairs, messages


def main() -> None:
    """Run the chaos and print the reconciliation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=60.0, help="Documents sent per second.")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 of the worker (>= 5).")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="surveil-bench-chaos-"))
    broker = LocalKafka(BrokerConfig(folder / "kafka", free_port(), free_port(), heap="768m"))
    broker.start()
    try:
        result = run(folder, broker, args)
    finally:
        broker.stop()
    print(machine_and_load(load_start))
    for line in result["lines"]:
        print(line)
    shutil.rmtree(folder)  # kept when the run fails, for its worker logs
    print(f"lost {result['lost']}, duplicated {result['duplicated']}")


class Workers:
    """The worker of the moment: started, killed and replaced, each with a log of its own."""

    def __init__(self, settings: Settings, env: dict[str, str], folder: Path) -> None:
        self.settings, self.env, self.folder = settings, env, folder
        self.restarts = 0
        self.current = self._start()

    def replace(self) -> None:
        """Start the next worker (the current one was killed or died)."""
        self.restarts += 1
        self.current = self._start()

    def _start(self) -> WorkerProcess:
        log = self.folder / f"worker{self.restarts}.log"
        worker = WorkerProcess(self.settings, self.env, log)
        worker.start()
        return worker


def run(folder: Path, broker: LocalKafka, args: argparse.Namespace) -> dict[str, Any]:
    """Load, kill, recover, reconcile; return the figures."""
    rng = random.Random(args.seed)  # noqa: S311 - chaos timing, not secrets
    settings = worker_settings(folder, broker.bootstrap, 3, RULES)
    docs = documents(args.documents, rng)
    events: list[str] = []
    with WebhookReceiver() as receiver:
        workers = Workers(settings, {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url}, folder)
        workers.current.wait_until(lambda s: True, timeout=120)
        publisher = Publisher(settings.bootstrap_servers, docs, args.rate)
        publisher.start()
        t0 = time.monotonic()

        def note(what: str) -> None:
            events.append(f"{time.monotonic() - t0:6.1f} s  {publisher.sent:5d} sent  {what}")

        kill_during_load(workers, broker, publisher, rng, args.kills, note)
        publisher.join()
        note("load done")
        catch_up(workers, note)
        posts = len(receiver.received)
    return reconcile(settings, events, publisher, posts, workers.restarts)


def kill_during_load(
    workers: Workers,
    broker: LocalKafka,
    publisher: Publisher,
    rng: random.Random,
    kills: int,
    note: Callable[[str], None],
) -> None:
    """Kill -9 the worker at random moments of the load (five at least), the broker once."""
    # Kill points by documents published, so every kill falls inside the load.
    marks = sorted(rng.uniform(0.1, 0.9) * len(publisher.docs) for _ in range(max(kills, 5)))
    broker_mark = rng.uniform(0.3, 0.7) * len(publisher.docs)
    broker_killed = False
    for mark in marks:
        while publisher.sent < mark and publisher.is_alive():
            if not broker_killed and publisher.sent >= broker_mark:
                broker_killed = True
                pid = broker.status().pid
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    note("kill -9 broker")
                    time.sleep(3)
                    broker.start()
                    note("broker back")
            time.sleep(0.2)
        # A random moment of a worker that runs: its web server answers.
        worker = workers.current
        try:
            worker.wait_until(lambda s: True, timeout=180)
        except SurveilError:
            note(f"worker exited before the kill: {crash_reason(worker.log_file)}")
        time.sleep(rng.uniform(0.0, 4.0))
        code = worker.kill()
        note(f"kill -9 worker (it {'was running' if code == -9 else f'had exited {code}'})")
        workers.replace()


def catch_up(workers: Workers, note: Callable[[str], None]) -> None:
    """Run workers until the group's commits reach the end of every topic; stop the last."""
    topics = [DOCS_RAW, DOCS_SCORED, ALERTS]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if workers.current.pid is None:  # it died: the next one carries on
            note(f"worker exited: {crash_reason(workers.current.log_file)}")
            workers.replace()
        if lag(workers.settings, topics) == 0:
            break
        time.sleep(2)
    time.sleep(8)  # group wait, the deliverer and the outbox audit copy
    note("caught up; stopping")
    workers.current.stop()


def reconcile(
    settings: Settings, events: list[str], publisher: Publisher, posts: int, restarts: int
) -> dict[str, Any]:
    """Compare ClickHouse, the outbox and the receiver with docs.raw."""
    raw_docs, pairs, messages = raw_pairs(settings.bootstrap_servers)
    warehouse = open_warehouse(settings)
    try:
        stored_docs = Counter(r[0] for r in warehouse.rows("SELECT doc_id FROM {db}.documents"))
        stored_pairs = Counter(
            (r[0], r[1]) for r in warehouse.rows("SELECT doc_id, ticker FROM {db}.scores")
        )
        rollup = int(warehouse.rows("SELECT sum(documents) FROM {db}.sentiment_1m")[0][0] or 0)
        stored_alerts = {
            (r[0], r[1]) for r in warehouse.rows("SELECT alert_id, state FROM {db}.alerts")
        }
    finally:
        warehouse.close()
    with sqlite3.connect(outbox_path(settings)) as outbox:
        notes = outbox.execute("SELECT key, channel, alert_id, state FROM outbox").fetchall()
        oks = Counter(
            (k, c) for k, c in outbox.execute("SELECT key, channel FROM attempts WHERE ok = 1")
        )
    lost = {
        "documents": len(raw_docs - set(stored_docs)),
        "scores": len(pairs - set(stored_pairs)),
        "alert deliveries": sum(1 for k, c, *_ in notes if oks[(k, c)] == 0),
        "alert rows": len({(a, s) for _, _, a, s in notes} - stored_alerts),
    }
    duplicated = {
        "documents": sum(n - 1 for n in stored_docs.values() if n > 1),
        "scores": sum(n - 1 for n in stored_pairs.values() if n > 1),
        "rollup": max(rollup - len(pairs), 0),
        "alert deliveries": sum(n - 1 for n in oks.values() if n > 1),
    }
    elapsed = publisher.ended_at - publisher.started_at
    lines = [
        *events,
        f"docs.raw: {messages} messages, {len(raw_docs)} documents, {len(pairs)} pairs; "
        f"{publisher.retries} publish retries",
        f"ClickHouse: {sum(stored_docs.values())} document rows, {sum(stored_pairs.values())} "
        f"score rows, rollup {rollup}; {len(stored_alerts)} alert rows",
        f"alerts: {len(notes)} notifications in the outbox, {posts} posts received",
        f"worker restarts: {restarts}; load {publisher.sent} documents in {elapsed:.0f} s "
        f"({publisher.sent / elapsed:.1f}/s against {publisher.rate:g}/s asked: "
        f"ratio {publisher.sent / elapsed / publisher.rate:.2f})",
        "lost: " + ", ".join(f"{k} {v}" for k, v in lost.items()),
        "duplicated: " + ", ".join(f"{k} {v}" for k, v in duplicated.items()),
    ]
    return {
        "lines": lines,
        "lost": sum(lost.values()),
        "duplicated": sum(duplicated.values()),
    }


if __name__ == "__main__":
    main()
