"""Scale-out on a real cluster: two classify workers and a store worker on three brokers store
every document once, keep the rollups equal to the raw scores and fire each alert once, though
a broker and a classify worker are killed (SIGKILL) in the middle of the stream."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.cluster import LocalCluster
from infra.settings import Settings
from ingest.base import collect
from ingest.config import load_specs
from ingest.producer import DocumentProducer
from streams.records import Document
from surveil.compose.ingestion import build_sources
from surveil.compose.runtime import WorkerProcess, open_warehouse
from surveil.demo.receiver import WebhookReceiver
from surveil.demo.run import processed
from tests.conftest import worker_settings
from tests.feeds import MSFT_FEED, committed, publish_feed, trace
from tests.test_cluster import describe, kill

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Published after the kills, so that the stream goes on through them.
LATER = """
sources:
  - {name: nasdaq-halts, kind: rss, url: "$F/feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml"}
  - {name: stocktwits-aapl, kind: stocktwits,
     url: "$F/social/stocktwits_streams_symbol_AAPL_2020-04-24.json"}
  - {name: stocknet-aapl, kind: tweets, url: "$F/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"}
"""
# Fires on the Seeking Alpha MSFT feed; no repeats, which would fall due in event time.
RULES = """
route: {group_wait: 0s, group_interval: 0s, repeat_interval: 1000d}
rules:
  - {name: slump, kind: threshold, threshold: -0.1, min_docs: 3, window: 2d}
"""
# The alert id in a Slack message's context line (alerts.slack._context).
ALERT_ID = re.compile(r"alert (\S+) · fired")


def _publish_later(settings: Settings, folder: Path) -> list[Document]:
    """Publish the LATER sources' recorded fixtures to docs.raw; return their documents."""
    path = folder / "sources.yaml"
    path.write_text(LATER.replace("$F", str(settings.shared_dir / "fixtures")))
    documents: list[Document] = []
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    try:
        for source in build_sources(settings, load_specs(path)).values():
            batch = collect(source)
            producer.publish(batch.documents, batch.rejected)
            documents += batch.documents
    finally:
        producer.close()
    return documents


def _busiest_leader(cluster: LocalCluster, topics: list[str]) -> int:
    """The id of the node that leads the most partitions of the topics."""
    leaders = Counter(p["leader_id"] for t in topics for p in describe(cluster.bootstrap, t)[0])
    return leaders.most_common(1)[0][0]


def _settle(store: WorkerProcess, docs: int, pairs: int, timeout: float) -> dict[str, int]:
    """Wait until the store has seen everything, both groups have committed every record
    (repeats make the seen counters run ahead of the rows), and every alert was delivered."""
    settings, deadline = store.settings, time.monotonic() + timeout
    store.wait_until(processed(docs, pairs), timeout)
    committed(settings, max(deadline - time.monotonic(), 1.0))

    def delivered(stats: dict[str, int]) -> bool:
        states = stats.get("alerts.firing", 0) + stats.get("alerts.resolved", 0)
        return stats.get("alerts.delivered", 0) >= states

    return store.wait_until(delivered, max(deadline - time.monotonic(), 1.0))


def _posts(receiver: WebhookReceiver) -> Counter[tuple[str, str]]:
    """The Slack posts received, counted by (alert id, state)."""
    posts: Counter[tuple[str, str]] = Counter()
    for post in receiver.received:
        found = ALERT_ID.search(json.dumps(post["blocks"], ensure_ascii=False))
        assert found is not None, post["text"]
        posts[(found[1], "firing" if post["text"].startswith("[FIRING]") else "resolved")] += 1
    return posts


@contextmanager
def _workers(
    cluster: LocalCluster, shared_dir: Path, folder: Path, receiver: WebhookReceiver
) -> Iterator[tuple[WorkerProcess, WorkerProcess, WorkerProcess]]:
    """A store worker posting to the receiver and two classify workers, on the cluster."""
    rules = folder / "alerts.yaml"
    rules.write_text(RULES)
    namespace = f"scale{os.getpid()}"

    def role(name: str, role: str, env: dict[str, str]) -> WorkerProcess:
        settings = worker_settings(
            cluster,  # type: ignore[arg-type] - its bootstrap is all the settings read
            shared_dir,
            folder / name,
            namespace,
            kafka_partitions=4,
            worker_role=role,
            classify_batch=4,
            alert_rules=rules,
        )
        return WorkerProcess(settings, env, folder / f"{name}.log")

    workers = (
        role("store", "store", {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url}),
        role("classify1", "classify", {}),
        role("classify2", "classify", {}),
    )
    for worker in workers:
        worker.start()
    try:
        for worker in workers:  # every one up (its counters page answers)
            worker.wait_answering(90)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def _stored(settings: Settings) -> dict[str, Any]:
    """What the store wrote: counts of documents, scores, rollups and alert states."""
    queries = {
        "documents": "SELECT count(), uniqExact(doc_id) FROM {db}.documents",
        "scores": "SELECT count(), uniqExact(doc_id, ticker), sum(score) FROM {db}.scores",
        "rollup": "SELECT sum(documents), sum(score_sum) FROM {db}.sentiment_1m",
    }
    warehouse = open_warehouse(settings)
    try:
        stored: dict[str, Any] = {name: warehouse.rows(sql)[0] for name, sql in queries.items()}
        stored["alerts"] = Counter(warehouse.rows("SELECT alert_id, state FROM {db}.alerts"))
        stored["pairs"] = set(warehouse.rows("SELECT doc_id, ticker FROM {db}.scores"))
    finally:
        warehouse.close()
    return stored


def test_a_killed_broker_and_classify_worker_lose_and_repeat_nothing(
    kafka_cluster: LocalCluster, shared_dir: Path, tmp_path: Path
) -> None:
    with WebhookReceiver() as receiver:
        try:
            with _workers(kafka_cluster, shared_dir, tmp_path, receiver) as workers:
                store, *classify = workers
                settings = store.settings
                documents = publish_feed(settings, shared_dir / MSFT_FEED).documents
                deadline = time.monotonic() + 60
                while not any(w.stats().get("classify.documents", 0) for w in classify):
                    assert time.monotonic() < deadline, "no classify worker scored anything"
                    time.sleep(0.2)
                topics = [f"{settings.topic_prefix}docs.raw", f"{settings.topic_prefix}docs.scored"]
                kill(kafka_cluster.nodes[_busiest_leader(kafka_cluster, topics) - 1])
                busy = max(classify, key=lambda w: w.stats().get("classify.documents", 0))
                assert busy.kill() == -9  # its partitions go to the other one
                documents += _publish_later(settings, tmp_path)
                docs = len({d.doc_id for d in documents})
                expected = {(d.doc_id, t) for d in documents for t in d.tickers}
                pairs = len(expected)
                stats = _settle(store, docs, pairs, 90)
                leader_topic = f"{settings.app_id}-classify-__assignor-__leader"
                changelog = f"{settings.app_id}-alert_rule_state-changelog"
                replicas = [
                    len(describe(settings.bootstrap_servers, t)[0][0]["replica_nodes"])
                    for t in (leader_topic, changelog)
                ]
        finally:
            kafka_cluster.start()  # the killed node back, for the later tests
    stored = _stored(settings)
    assert replicas == [3, 3]  # Faust's own topics are replicated as the pipeline's
    assert stored["documents"] == (docs, docs)  # every document once
    missing = expected - stored["pairs"]
    assert not missing, trace(settings, missing)  # where the lost pairs were on docs.scored
    assert stored["scores"][:2] == (pairs, pairs)  # every (document, ticker) once
    assert stored["rollup"][0] == pairs and abs(stored["rollup"][1] - stored["scores"][2]) < 1e-6
    alerts = stored["alerts"]
    assert any(state == "firing" for _, state in alerts), stats  # the rule fired
    assert set(alerts.values()) == {1}  # each alert state stored once
    assert _posts(receiver) == alerts  # and posted once
