"""Exactly-once inserts by range (streams.ledger) into the real engine: redeliveries of whole
and of re-cut batches, a crash between recording a range and inserting it, and classify
redeliveries at new offsets add no row to the scores and no count to the rollup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from infra.db import Warehouse, connect
from streams.ledger import Chunk, ClickHouseRanges, Ledger, Range
from streams.records import Scored
from streams.steps import Where
from streams.store import Store
from tests.records import T0, scored

TOPIC = "docs.scored"


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(connect(f"chdb://{tmp_path / 'ch'}"), "surveil")
    wh.migrate()
    yield wh
    wh.close()


def _score(n: int, origin: tuple[int, int, int] | None = None) -> Scored:
    ticker = ("CNTS", "FABR")[n % 2]
    at = T0 + timedelta(seconds=n)
    return scored(f"doc-{n:05d}", ticker, at, -0.5 + n / 100, scored_at=T0, origin=origin)


def _ledger(warehouse: Warehouse, rows: int = 5) -> Ledger[Scored]:
    return Ledger(
        "scores",
        ClickHouseRanges(warehouse),
        rows,
        flush_s=60.0,
        key=lambda r: (r.doc_id, r.ticker),
        origin=lambda r: r.origin,
    )


def _deliver(ledger: Ledger[Scored], store: Store, items: Iterable[tuple[int, Scored]]) -> int:
    """Hand (offset, record) pairs to the ledger as one take, flush; return rows sent."""
    ledger.add(((Where(TOPIC, 0, o), r, o) for o, r in items), now=0.0)
    return ledger.write(store.insert_scores, now=0.0, flush=True)


def _counts(warehouse: Warehouse) -> tuple[int, int, float, float]:
    raw = warehouse.rows("SELECT count(), uniqExact(doc_id, ticker), sum(score) FROM {db}.scores")
    rollup = warehouse.rows("SELECT sum(documents), sum(score_sum) FROM {db}.sentiment_1m")
    (count, unique, total), (docs, summed) = raw[0], rollup[0]
    assert docs == count and abs(summed - total) < 1e-6  # the rollup always equals the raw
    return count, unique, round(total, 6), round(summed, 6)


def test_a_whole_batch_delivered_again_after_a_restart_adds_nothing(warehouse: Warehouse) -> None:
    store, batch = Store(warehouse), [(o, _score(o)) for o in range(10)]
    ledger = _ledger(warehouse)
    assert _deliver(ledger, store, batch) == 10
    assert sorted(ledger.take_acked()) == list(range(10))
    before = _counts(warehouse)
    _deliver(_ledger(warehouse), store, batch)  # the offsets were never committed
    assert _counts(warehouse) == before == (10, 10, before[2], before[3])


def test_a_batch_redelivered_in_other_cuts_is_cut_as_before(warehouse: Warehouse) -> None:
    store = Store(warehouse)
    records = {o: _score(o) for o in range(12)}
    first = _ledger(warehouse, rows=5)
    _deliver(first, store, records.items())  # inserts 0-4, 5-9, 10-11
    ranges = warehouse.rows("SELECT first, last FROM {db}.insert_ranges FINAL")
    assert ranges == [(10, 11)]
    # After a restart with other batch sizes, the same offsets come back in other takes.
    again = _ledger(warehouse, rows=3)
    for take in ((0, 1, 2, 3), (4, 5, 6, 7, 8, 9, 10), (11,)):
        _deliver(again, store, [(o, records[o]) for o in take])
    assert _counts(warehouse)[:2] == (12, 12)
    assert sorted(again.take_acked()) == list(range(12))


def test_a_crash_between_recording_a_range_and_inserting_it_stores_it_once(
    warehouse: Warehouse,
) -> None:
    store = Store(warehouse)
    records = {o: _score(o) for o in range(8)}
    first = _ledger(warehouse, rows=4)

    def dies_on_the_second(chunk: Chunk[Scored]) -> int:
        if chunk.span.first == 4:
            msg = "killed before the insert"
            raise OSError(msg)
        return store.insert_scores(chunk)

    first.add(((Where(TOPIC, 0, o), r, o) for o, r in records.items()), now=0.0)
    with pytest.raises(OSError, match="killed"):
        first.write(dies_on_the_second, now=0.0, flush=True)
    assert sorted(first.take_acked()) == [0, 1, 2, 3]  # only the stored range
    assert _counts(warehouse)[:2] == (4, 4)
    # The restarted worker gets 4-7 back two at a time: it waits for the whole range 4-7.
    again = _ledger(warehouse, rows=2)
    assert _deliver(again, store, [(4, records[4]), (5, records[5])]) == 0
    assert again.take_acked() == [] and again.pending() == 2
    assert _deliver(again, store, [(6, records[6]), (7, records[7])]) == 4
    assert _counts(warehouse)[:2] == (8, 8)
    assert sorted(again.take_acked()) == [4, 5, 6, 7]


def test_a_range_redelivered_a_second_time_is_dropped_by_its_token(warehouse: Warehouse) -> None:
    store = Store(warehouse)
    records = [(o, _score(o)) for o in range(4)]
    _deliver(_ledger(warehouse, rows=4), store, records)
    # Recorded and inserted, but never acknowledged: twice more, each after a restart.
    for _ in range(2):
        _deliver(_ledger(warehouse, rows=4), store, records)
    assert _counts(warehouse)[:2] == (4, 4)


def test_documents_scored_again_by_another_classify_worker_are_dropped(
    warehouse: Warehouse,
) -> None:
    store = Store(warehouse)
    # docs.raw partition 0: documents at offsets 10 and 11 (two tickers), 12; partition 1: 7
    sent = [
        _score(1, (0, 10, 0)),
        _score(2, (0, 10, 1)),
        _score(3, (0, 11, 0)),
        _score(4, (1, 7, 0)),
    ]
    # The classify worker died before committing 10-11: its successor scores them again and
    # goes on with 12, at new offsets of docs.scored, before the first worker's range ends.
    again = [_score(1, (0, 10, 0)), _score(2, (0, 10, 1)), _score(3, (0, 11, 0))]
    later = [_score(5, (0, 12, 0)), _score(6, (1, 8, 0))]
    stream = list(enumerate(sent + again + later))
    ledger = _ledger(warehouse, rows=100)
    _deliver(ledger, store, stream[:4])
    _deliver(ledger, store, stream[4:])  # another insert: its repeats are not in the first
    assert _counts(warehouse)[:2] == (6, 6)
    # A restart re-cuts the same range, with the watermark it had before it: no change.
    _deliver(_ledger(warehouse, rows=2), store, stream)
    assert _counts(warehouse)[:2] == (6, 6)
    span = ClickHouseRanges(warehouse).last("scores", TOPIC, 0)
    assert span is not None and span.after == {0: (12, 0), 1: (8, 0)}


def test_a_range_past_the_end_of_its_partition_belongs_to_an_older_topic(
    warehouse: Warehouse,
) -> None:
    store, ranges = Store(warehouse), ClickHouseRanges(warehouse)
    ranges.record(Range("scores", TOPIC, 0, 500, 599))  # a deleted topic's last range
    ledger = Ledger(
        "scores", ranges, 5, 60.0, key=lambda r: (r.doc_id, r.ticker), fresh=lambda s: s.last < 3
    )
    assert _deliver(ledger, store, [(o, _score(o)) for o in range(3)]) == 3


def test_records_wait_for_a_full_insert_or_their_time(warehouse: Warehouse) -> None:
    store, ledger = Store(warehouse), _ledger(warehouse, rows=4)
    ledger.add(((Where(TOPIC, 1, o), _score(o), o) for o in range(3)), now=100.0)
    assert ledger.write(store.insert_scores, now=101.0) == 0  # not full, not old
    assert ledger.write(store.insert_scores, now=160.0) == 3  # flush_s (60 s) passed
    ledger.add(((Where(TOPIC, 1, o), _score(o), o) for o in range(3, 11)), now=200.0)
    assert ledger.write(store.insert_scores, now=200.0) == 8  # two full inserts
    assert ledger.pending() == 0 and len(ledger.take_acked()) == 11


def test_records_held_out_of_offset_order_are_cut_in_offset_order(warehouse: Warehouse) -> None:
    # A later take redelivers offsets behind those held (after a seek back): the cut must
    # still start at the lowest, or the range recorded would skip offsets 0-4.
    store, ledger = Store(warehouse), _ledger(warehouse, rows=10)
    records = {o: _score(o) for o in range(10)}
    ledger.add(((Where(TOPIC, 0, o), records[o], o) for o in range(5, 10)), now=0.0)
    ledger.add(((Where(TOPIC, 0, o), records[o], o) for o in range(5)), now=0.0)
    assert ledger.write(store.insert_scores, now=0.0) == 10  # full: 10 records, 0-9
    assert warehouse.rows("SELECT first, last FROM {db}.insert_ranges FINAL") == [(0, 9)]
    assert ledger.take_acked() == list(range(10))
