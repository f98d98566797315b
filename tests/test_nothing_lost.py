"""Nothing lost: a batch is acknowledged only after what it produced is written.

A real worker (real broker, real chDB) whose ClickHouse inserts fail for a while: the store
agents stall, retry and then write every row once; killed while stalled, the next worker
gets every unwritten batch again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from infra.errors import SurveilError
from infra.settings import Settings
from surveil.compose.runtime import WorkerProcess, open_warehouse
from surveil.demo.run import processed
from tests.feeds import MSFT_FEED, committed, publish_feed

pytestmark = pytest.mark.integration


def _publish(settings: Settings, feed: Path) -> tuple[set[str], set[tuple[str, str]]]:
    batch = publish_feed(settings, feed)
    docs = {d.doc_id for d in batch.documents}
    pairs = {(d.doc_id, t) for d in batch.documents for t in d.tickers}
    return docs, pairs


def _faulty(settings: Settings, flag: Path, log: Path) -> WorkerProcess:
    env = {"SURVEIL_TEST_FAIL_WRITES": str(flag)}
    return WorkerProcess(settings, env, log, module="tests.faulty_worker")


# A worker, the documents sent to it and their (document, ticker) pairs.
Fed = tuple[WorkerProcess, set[str], set[tuple[str, str]]]


@contextmanager
def _stalled_worker(settings: Settings, flag: Path, feed: Path, log: Path) -> Iterator[Fed]:
    """A faulty worker whose writes fail while ``flag`` exists, fed ``feed`` and stalled on
    it: yield it with what it was sent; stop it after."""
    worker = _faulty(settings, flag, log)
    worker.start()
    try:
        docs, pairs = _publish(settings, feed)
        _stalled(worker)
        yield worker, docs, pairs
    finally:
        worker.stop()


def _stalled(worker: WorkerProcess) -> None:
    worker.wait_until(
        lambda s: (
            s.get("writes.store_documents.retries", 0) >= 2
            and s.get("writes.store_scores.retries", 0) >= 2
        ),
        timeout=180,
    )
    assert worker.stats()["stage.store_scores.stalled"] == 1
    stages = worker.agents()
    for name in ("store_documents", "store_scores"):
        assert stages[name]["state"] == "stalled"
        assert "injected fault" in str(stages[name]["last_error"])
        assert stages[name]["stalled_since"] is not None


def _uncommitted(settings: Settings) -> dict[int, int]:
    """Messages of docs.raw per partition past the worker group's committed offset."""
    topic = f"{settings.topic_prefix}docs.raw"
    # Reading a group's committed offsets does not join the group.
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        return {tp.partition: end - (consumer.committed(tp) or 0) for tp, end in ends.items()}
    finally:
        consumer.close()


def _landed(settings: Settings) -> tuple[list[str], list[tuple[str, str]], int]:
    warehouse = open_warehouse(settings)
    try:
        db = settings.clickhouse_database
        docs = [r[0] for r in warehouse.rows(f"SELECT doc_id FROM {db}.documents")]
        scores = [(r[0], r[1]) for r in warehouse.rows(f"SELECT doc_id, ticker FROM {db}.scores")]
        rollup = warehouse.rows(f"SELECT sum(documents) FROM {db}.sentiment_1m")[0][0]
    finally:
        warehouse.close()
    return docs, scores, int(rollup)


def _every_row_once(settings: Settings, docs: set[str], pairs: set[tuple[str, str]]) -> None:
    stored_docs, stored_scores, rollup = _landed(settings)
    assert sorted(stored_docs) == sorted(docs)  # every document, once
    assert sorted(stored_scores) == sorted(pairs)  # every score, once
    assert rollup == len(pairs)  # no insert counted twice in the rollup


def _next_worker_writes_every_row_once(
    settings: Settings,
    docs: set[str],
    pairs: set[tuple[str, str]],
    log: Path,
    env: dict[str, str] | None = None,
) -> None:
    """Start a worker (the faulty one when ``env`` sets a fault), wait until it stored the
    documents and pairs, stop it cleanly; check every row is there once."""
    module = "tests.faulty_worker" if env else "surveil"
    worker = WorkerProcess(settings, env or {}, log, module=module)
    worker.start()
    try:
        worker.wait_until(processed(len(docs), len(pairs)), timeout=180)
        assert worker.stop() == 0
    finally:
        worker.stop()
    _every_row_once(settings, docs, pairs)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    """The file whose presence makes the faulty worker's ClickHouse inserts fail."""
    path = tmp_path / "fail-writes"
    path.touch()
    return path


@pytest.fixture
def stalled_worker(
    settings: Settings, flag: Path, shared_dir: Path, tmp_path: Path
) -> Callable[[str], AbstractContextManager[Fed]]:
    """``with stalled_worker(log_name) as (worker, docs, pairs)``: a faulty worker fed the MSFT
    feed, its writes failing and stalled."""
    return lambda log: _stalled_worker(settings, flag, shared_dir / MSFT_FEED, tmp_path / log)


def test_clickhouse_refusing_writes_for_a_while_loses_and_duplicates_nothing(
    settings: Settings, flag: Path, stalled_worker: Callable[[str], AbstractContextManager[Fed]]
) -> None:
    with stalled_worker("worker.log") as (worker, docs, pairs):
        flag.unlink()  # ClickHouse recovers
        stats = worker.wait_until(processed(len(docs), len(pairs)), timeout=180)
        assert stats["writes.store_scores.recovered"] >= 1
        assert worker.agents()["store_scores"]["state"] == "running"
        assert worker.stats()["stage.store_scores.stalled"] == 0
        # Every partition's commit catches up after the stall (none stuck behind a gap).
        deadline = time.monotonic() + 60
        while any(_uncommitted(settings).values()) and time.monotonic() < deadline:
            time.sleep(1)
        left = _uncommitted(settings)
        assert left and not any(left.values()), left
        assert worker.stop() == 0

    _every_row_once(settings, docs, pairs)


def test_a_worker_killed_while_its_writes_fail_leaves_them_to_the_next(
    settings: Settings,
    stalled_worker: Callable[[str], AbstractContextManager[Fed]],
    tmp_path: Path,
) -> None:
    with stalled_worker("worker0.log") as (doomed, docs, pairs):
        doomed.kill()  # kill -9 while no batch could be written

    _next_worker_writes_every_row_once(settings, docs, pairs, tmp_path / "worker1.log")


def test_a_dead_agent_stops_the_worker_with_an_error_and_loses_nothing(
    settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker0.log"
    crashing = WorkerProcess(
        settings, {"SURVEIL_TEST_CRASH_CLASSIFY": "1"}, log, module="tests.faulty_worker"
    )
    crashing.start()
    try:
        docs, pairs = _publish(settings, shared_dir / MSFT_FEED)
        with pytest.raises(SurveilError, match="the worker exited with 1"):
            crashing.wait_until(processed(len(docs), len(pairs)), timeout=180)
    finally:
        crashing.kill()
    assert "injected bug in the model" in log.read_text()

    # the batch the dead agent held comes back
    _next_worker_writes_every_row_once(settings, docs, pairs, tmp_path / "worker1.log")


@pytest.mark.parametrize("topic", ["docs.raw", "docs.scored"])
def test_records_a_fetch_skipped_are_fetched_again_never_committed_unread(
    topic: str, settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    # What faust-streaming does in a rebalance (streams.ordered): the fetcher moved past
    # offsets 2-4 of partition 0, which no agent got. Faust alone commits past them.
    log = tmp_path / "worker.log"
    skip = {"SURVEIL_TEST_SKIP_FETCHED": f"{settings.topic_prefix}{topic}/0/2-4"}
    worker = WorkerProcess(settings, skip, log, module="tests.faulty_worker")
    worker.start()
    try:
        docs, pairs = _publish(settings, shared_dir / MSFT_FEED)
        worker.wait_until(processed(len(docs), len(pairs)), timeout=120)
        committed(settings, 30, {settings.app_id: [f"{settings.topic_prefix}docs.raw"]})
        assert worker.stop() == 0
    finally:
        worker.stop()
    _every_row_once(settings, docs, pairs)
    assert f"{settings.topic_prefix}{topic}/0: fetched offset 5 while 2" in log.read_text()


def test_records_deleted_by_retention_before_they_were_read_are_named_and_passed(
    settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    # The group committed offset 1 of partition 0, then retention deleted offsets 0-3: the
    # fetcher resets to offset 4, which streams.ordered must accept after asking the log.
    batch = publish_feed(settings, shared_dir / MSFT_FEED)
    tp = TopicPartition(f"{settings.topic_prefix}docs.raw", 0)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        gone = {json.loads(m.value)["doc_id"] for m, _ in zip(consumer, range(4), strict=False)}
        consumer.commit({tp: OffsetAndMetadata(1, "", -1)})
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.delete_records({tp: 4})
    finally:
        admin.close()
    kept = [d for d in batch.documents if d.doc_id not in gone]
    pairs = {(d.doc_id, t) for d in kept for t in d.tickers}
    log = tmp_path / "worker.log"
    _next_worker_writes_every_row_once(settings, {d.doc_id for d in kept}, pairs, log)
    assert f"{tp.topic}/0: offsets 1-3 were deleted (retention)" in log.read_text()


def test_the_last_records_a_fetch_dropped_are_fetched_again(
    settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    # Dropped at the end of the partition, no later fetch shows a skip: only the consumer's
    # watch (fetch position past what was delivered, nothing delivered since) finds them.
    docs, pairs = _publish(settings, shared_dir / MSFT_FEED)
    tp = TopicPartition(f"{settings.topic_prefix}docs.raw", 0)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        end = consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()
    log = tmp_path / "worker.log"
    skip = {"SURVEIL_TEST_SKIP_FETCHED": f"{tp.topic}/0/{end - 3}-{end - 1}"}
    _next_worker_writes_every_row_once(settings, docs, pairs, log, skip)
    found = f"{tp.topic}/0: the fetcher is at {end} but {end - 3} was not delivered"
    assert found in log.read_text()
