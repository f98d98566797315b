"""Alert latency: publication -> alert delivered, on a replayed fixture stream.

Starts a local Kafka broker and a real worker (lexicon model, chDB) with a Slack-compatible
receiver on 127.0.0.1, then replays recorded fixture documents (Seeking Alpha RSS,
StockTwits, tweets) at a steady rate, each re-stamped as published at the moment it is sent.
A threshold rule (mean score <= 0.05 over 2 documents, no group wait) makes many tickers
fire. Latency of an alert = the outbox's successful delivery time minus the publication
time of the document that triggered it.

Baseline in the same run: the latency of scoring alone (publication -> the scored record's
Kafka timestamp on docs.scored), the floor any alert pays; the ratio says what rules,
routing, the outbox and the Slack post add.

Run: ``.venv/bin/python -m bench.alerts [--rate 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.serializer import JsonSerializer

from bench.common import machine_and_load, worker_settings
from infra.broker import BrokerConfig, LocalKafka, free_port
from infra.settings import Settings
from ingest.base import collect
from ingest.config import make_source
from ingest.producer import DocumentProducer
from streams.records import Document
from streams.topics import DOCS_SCORED
from surveil.compose.runtime import WorkerProcess, outbox_path
from surveil.demo.receiver import WebhookReceiver

FIXTURES = {
    "rss": "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml",
    "stocktwits": "fixtures/social/stocktwits_streams_symbol_AAPL_2020-04-24.json",
    "tweets": "fixtures/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl",
}
RULES = """\
route: {group_wait: 0s, group_interval: 0s, repeat_interval: 4h}
rules:
  - name: mean_score_low
    kind: threshold
    threshold: 0.05
    min_docs: 2
    window: 1h
"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def stream(shared: Path) -> list[Document]:
    """The fixture documents, in file order, each kept with its tickers."""
    docs: list[Document] = []
    for kind, rel in FIXTURES.items():
        docs += [
            d for d in collect(make_source(kind, kind, str(shared / rel))).documents if d.tickers
        ]
    return docs


def main() -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="Documents sent per second.")
    args = parser.parse_args()
    shared = Settings(_env_file=None).shared_dir.resolve()  # type: ignore[call-arg]
    load_start = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="surveil-bench-alerts-"))
    port, controller = free_port(), free_port()
    broker = LocalKafka(BrokerConfig(folder / "kafka", port, controller, heap="512m"))
    broker.start()
    try:
        result = run(folder, broker.bootstrap, shared, args.rate)
    finally:
        broker.stop()
    shutil.rmtree(folder)  # kept when the run fails, for its worker.log
    alert_lat, score_lat = result["alerts"], result["scores"]
    print(machine_and_load(load_start))
    print(f"stream: {result['documents']} fixture documents at {args.rate:g}/s, re-stamped")
    print("| path | n | p50 s | p99 s | max s |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (
        ("publication -> scored (baseline)", score_lat),
        ("publication -> alert delivered", alert_lat),
    ):
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.3f} | "
            f"{percentile(values, 99):.3f} | {max(values):.3f} |"
        )
    print(
        "ratio alert/scored: "
        f"p50 {statistics.median(alert_lat) / statistics.median(score_lat):.2f}x, "
        f"p99 {percentile(alert_lat, 99) / percentile(score_lat, 99):.2f}x"
    )


def run(folder: Path, bootstrap: str, shared: Path, rate: float) -> dict[str, Any]:
    """Replay the stream through a worker; return the latencies measured."""
    settings = worker_settings(folder, bootstrap, 1, RULES, shared_dir=shared, classify_within=0.05)
    docs = stream(shared)
    with WebhookReceiver() as receiver:
        worker = WorkerProcess(
            settings, {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url}, folder / "worker.log"
        )
        worker.start()
        try:
            producer = DocumentProducer(settings.bootstrap_servers)
            try:
                # Warm up: the worker has joined its group and scored a document before the
                # clock runs; the warm-up document is left out of the figures.
                warm = docs[0].model_copy(
                    update={"doc_id": "warmup-0000", "published_at": datetime.now(UTC)}
                )
                producer.publish([warm])
                worker.wait_until(lambda s: s.get("store.scores.seen", 0) >= len(warm.tickers), 120)
                for doc in docs:
                    now = datetime.now(UTC)
                    producer.publish(
                        [doc.model_copy(update={"published_at": now, "fetched_at": now})]
                    )
                    time.sleep(1 / rate)
            finally:
                producer.close()
            pairs = sum(len(d.tickers) for d in docs) + len(warm.tickers)
            worker.wait_until(lambda s: s.get("store.scores.seen", 0) >= pairs, 120)
            time.sleep(3)  # the deliverer polls every second
        finally:
            worker.stop()
    return {
        "documents": len(docs),
        "alerts": _alert_latencies(outbox_path(settings)),
        "scores": _score_latencies(settings),
    }


def _alert_latencies(path: Path) -> list[float]:
    out = []
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT o.alert, MIN(a.at) FROM outbox o JOIN attempts a ON a.key = o.key "
            "AND a.channel = o.channel WHERE a.ok = 1 AND o.state = 'firing' GROUP BY o.key"
        ).fetchall()
    for alert_json, delivered_us in rows:
        alert = json.loads(alert_json)
        trigger = datetime.fromisoformat(alert["trigger_published_at"]).timestamp()
        out.append(delivered_us / 1e6 - trigger)
    return out


def _score_latencies(settings: Settings) -> list[float]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        value_deserializer=JsonSerializer(),
        consumer_timeout_ms=3000,
    )
    tp = TopicPartition(DOCS_SCORED, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out = []
    for record in consumer:
        if record.value["doc_id"].startswith("warmup"):
            continue
        published = datetime.fromisoformat(record.value["published_at"]).timestamp()
        out.append(record.timestamp / 1000 - published)
    consumer.close()
    return out


if __name__ == "__main__":
    main()
