"""Worker roles: two classify workers share docs.raw, one store worker owns ClickHouse, and a
classify worker killed mid-stream loses and repeats nothing (what it sent before the kill is
scored again by the other, and the store drops the repeats by their origin on docs.raw)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.settings import Settings
from surveil.compose.runtime import WorkerProcess, open_warehouse
from surveil.demo.run import processed
from tests.feeds import HALTS_FEED, MSFT_FEED, committed, publish_feed

pytestmark = pytest.mark.integration


def test_two_classify_workers_and_a_store_worker_store_every_row_once_through_a_kill(
    make_settings: Callable[..., Settings], shared_dir: Path, tmp_path: Path
) -> None:
    def role(name: str, role: str) -> WorkerProcess:
        settings = make_settings(kafka_partitions=4, worker_role=role, classify_batch=4)
        settings = settings.model_copy(update={"state_dir": tmp_path / name})
        return WorkerProcess(settings, {}, tmp_path / f"{name}.log")

    store = role("store", "store")
    first, second = role("classify1", "classify"), role("classify2", "classify")
    workers = [store, first, second]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:  # every one up (its counters page answers)
            worker.wait_answering(90)
        batch = publish_feed(store.settings, shared_dir / MSFT_FEED)
        first.wait_until(lambda s: s.get("classify.documents", 0) > 0, 60)
        assert first.kill() == -9  # mid-stream: its partitions go to the other one
        documents = [
            *batch.documents,
            *publish_feed(store.settings, shared_dir / HALTS_FEED).documents,
        ]
        docs, pairs = len(documents), sum(len(d.tickers) for d in documents)
        stats = store.wait_until(processed(docs, pairs), 180)
        committed(store.settings, 120)  # and no record left to store
        assert second.stats().get("classify.documents", 0) > 0
        assert "classify.documents" not in stats  # the store role runs no model
    finally:
        for worker in workers:
            worker.stop()
    assert not (tmp_path / "classify2" / "clickhouse").exists()  # nor ClickHouse, here
    warehouse = open_warehouse(store.settings)
    try:
        counts = warehouse.rows(
            "SELECT count(), uniqExact(doc_id, ticker), sum(score) FROM {db}.scores"
        )
        rollup = warehouse.rows("SELECT sum(documents), sum(score_sum) FROM {db}.sentiment_1m")
        stored = warehouse.rows("SELECT uniqExact(doc_id), count() FROM {db}.documents")
    finally:
        warehouse.close()
    assert counts[0][:2] == (pairs, pairs)  # every (document, ticker) once
    assert rollup[0][0] == pairs and abs(rollup[0][1] - counts[0][2]) < 1e-6
    assert stored == [(docs, docs)]
