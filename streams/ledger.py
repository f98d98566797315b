"""Exactly-once inserts from Kafka into ClickHouse, without reading the tables first.

After the ClickHouse Kafka Connect sink's exactly-once mode (its docs/DESIGN.md): an insert
repeated with the same ``insert_deduplication_token`` is dropped by a table that keeps a
deduplication window, and by the materialized views' target tables when they keep one too
(``non_replicated_deduplication_window``, migration 007). So every insert is cut from one
topic partition, its token is the range it came from, and the range is recorded before the
insert (`Ranges`, the table ``insert_ranges``). A redelivery is then cut at the recorded
boundaries again::

    offsets below the recorded range      stored by earlier inserts: acknowledged, dropped
    offsets inside the recorded range     re-inserted as that range, once the whole range is
                                          back, with its token: the table drops it if it
                                          was stored, stores it if the insert never landed
    offsets after it                      the next range, recorded, then inserted

A range is recorded only after the insert of the one before it succeeded, so one record per
partition is all the state there is. The Kafka Connect sink also writes an "after" state; a
re-insert under the token is harmless, so the record before the insert is enough.

Upstream redeliveries are the other duplicates: a classify worker killed after sending part
of a batch has its documents scored again by the next owner of the partition, at new offsets
of docs.scored. Each scored record says where its document was on docs.raw (``origin``:
partition, offset, the ticker's place in the document); a partition of docs.scored receives
one docs.raw partition's records in that order, so a record at or below the highest origin
stored from its docs.raw partition is a repeat. Each range records that watermark before and
after it, so a re-cut range drops exactly what it dropped the first time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from infra.db import Warehouse
from streams.steps import Where

log = logging.getLogger(__name__)

R = TypeVar("R")
TP = tuple[str, int]
Origin = tuple[int, int, int]  # docs.raw partition, offset, the ticker's index in the document
Watermark = Mapping[int, tuple[int, int]]  # docs.raw partition -> highest (offset, index)


@dataclass(frozen=True)
class Range:
    """What one insert into ``target`` took from one topic partition (offsets inclusive)."""

    target: str
    topic: str
    partition: int
    first: int
    last: int
    before: Watermark = field(default_factory=dict)
    after: Watermark = field(default_factory=dict)

    @property
    def token(self) -> str:
        """The insert's ``insert_deduplication_token``."""
        return f"{self.target}/{self.topic}/{self.partition}/{self.first}-{self.last}"


class Ranges(Protocol):
    """Where the last range of each (target, topic, partition) is kept."""

    def last(self, target: str, topic: str, partition: int) -> Range | None:
        """Return the range recorded last, or None."""
        ...

    def record(self, span: Range) -> None:
        """Keep ``span`` as the partition's last range (before its insert is made)."""
        ...


@dataclass(frozen=True)
class Chunk(Generic[R]):
    """One insert: a range, the records it stores, the events acknowledged after it."""

    span: Range
    records: list[R]
    events: list[Any]


class _Item(NamedTuple, Generic[R]):
    offset: int
    record: R
    event: Any
    at: float  # when it arrived


def _origin_key(origin: Origin) -> tuple[int, int]:
    return origin[1], origin[2]


class Ledger(Generic[R]):
    """Cut one target's pending records into inserts, per topic partition (see module doc).

    Calls block (a range may be read from ClickHouse): the store thread makes them.

    Args:
        target: the table the records go to.
        ranges: where ranges are recorded and read back.
        rows: the most records in one insert.
        flush_s: the longest a record waits for its insert to fill.
        key: identifies a record within an insert (repeats in one range are dropped).
        origin: where a record's own input was upstream, to drop upstream redeliveries.
        fresh: whether a range read back belongs to the topic as it is now (False when the
            range ends at or past the partition's end, i.e. the topic was made again).
    """

    def __init__(
        self,
        target: str,
        ranges: Ranges,
        rows: int,
        flush_s: float,
        key: Callable[[R], Hashable],
        origin: Callable[[R], Origin | None] = lambda _: None,
        fresh: Callable[[Range], bool] = lambda _: True,
    ) -> None:
        self.target, self.ranges, self.rows, self.flush_s = target, ranges, rows, flush_s
        self._key, self._origin, self._fresh = key, origin, fresh
        self._pending: dict[TP, dict[int, _Item[R]]] = {}
        self._state: dict[TP, Range | None] = {}
        self._acked: list[Any] = []

    def add(self, items: Iterable[tuple[Where, R, Any]], now: float) -> None:
        """Hold records (with where they came from and their event) until inserted."""
        for where, record, event in items:
            if where.partition is None or where.offset is None:
                msg = f"{self.target}: a record without a partition and offset cannot be stored"
                raise ValueError(msg)
            tp = (where.topic, where.partition)
            held = self._pending.setdefault(tp, {})
            held[where.offset] = _Item(where.offset, record, event, now)

    def write(self, insert: Callable[[Chunk[R]], int], now: float, flush: bool = False) -> int:
        """Insert every chunk that is due; return the rows inserted.

        A chunk is due when it is full, has waited ``flush_s``, or ``flush`` is set. Events
        of stored chunks (and of stale redeliveries) are then in `take_acked`.
        """
        inserted = 0
        for tp in list(self._pending):
            while (chunk := self._cut(tp, now, flush)) is not None:
                if chunk.span != self._state.get(tp):
                    self.ranges.record(chunk.span)
                    self._state[tp] = chunk.span
                inserted += insert(chunk) if chunk.records else 0
                self._done(tp, chunk)
        return inserted

    def take_acked(self) -> list[Any]:
        """Return and forget the events whose records are stored."""
        acked, self._acked = self._acked, []
        return acked

    def pending(self) -> int:
        """How many records wait for their insert."""
        return sum(len(items) for items in self._pending.values())

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop what is known of partitions this worker no longer owns (after a rebalance):
        their unacknowledged records go to the new owner, their range is read again."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._state.pop(tp, None)

    def _load(self, tp: TP) -> Range | None:
        if tp not in self._state:
            span = self.ranges.last(self.target, *tp)
            if span is not None and not self._fresh(span):
                log.warning(
                    "%s: range %s is past the end of %s: the topic is new",
                    *(self.target, span.token, tp),
                )
                span = None
            self._state[tp] = span
        return self._state[tp]

    def _cut(self, tp: TP, now: float, flush: bool) -> Chunk[R] | None:
        held = self._pending.get(tp)
        if not held:
            return None
        state = self._load(tp)
        items = [held[o] for o in sorted(held)]
        if state is not None:
            stale = [i for i in items if i.offset < state.first]
            if stale:  # stored by an earlier range, delivered again
                self._acked += [i.event for i in stale]
                for i in stale:
                    del held[i.offset]
                items = items[len(stale) :]
            if items and items[0].offset <= state.last:
                inside = [i for i in items if i.offset <= state.last]
                if inside[-1].offset < state.last:
                    return None  # the range is not all back yet
                return self._chunk(state, inside, state.before)
        waited = now - items[0].at if items else 0.0  # the first in offset order came first
        due = len(items) >= self.rows or flush or waited >= self.flush_s
        if not items or not due:
            return None
        take = items[: self.rows]
        before = state.after if state is not None else {}
        span = Range(self.target, tp[0], tp[1], take[0].offset, take[-1].offset, before)
        return self._chunk(span, take, before)

    def _chunk(self, span: Range, items: list[_Item[R]], before: Watermark) -> Chunk[R]:
        mark = dict(before)
        records: dict[Hashable, R] = {}
        for item in items:
            origin = self._origin(item.record)
            if origin is not None:
                if _origin_key(origin) <= mark.get(origin[0], (-1, -1)):
                    continue  # an upstream redelivery
                mark[origin[0]] = _origin_key(origin)
            records.setdefault(self._key(item.record), item.record)
        if span.after != mark:
            span = Range(
                span.target, span.topic, span.partition, span.first, span.last, before, mark
            )
        return Chunk(span, list(records.values()), [i.event for i in items])

    def _done(self, tp: TP, chunk: Chunk[R]) -> None:
        held = self._pending[tp]
        for offset in [o for o in held if o <= chunk.span.last]:
            del held[offset]
        self._acked += chunk.events
        if not held:
            del self._pending[tp]


class ClickHouseRanges:
    """`Ranges` in the table ``insert_ranges`` (one row per partition after merges)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def last(self, target: str, topic: str, partition: int) -> Range | None:
        """Return the range recorded last for a partition, or None."""
        rows = self.warehouse.rows(
            "SELECT first, last, before, after FROM {db}.insert_ranges FINAL "
            "WHERE target = {t:String} AND topic = {topic:String} AND partition = {p:UInt32} "
            "LIMIT 1",
            {"t": target, "topic": topic, "p": partition},
        )
        if not rows:
            return None
        first, last, before, after = rows[0]
        return Range(target, topic, partition, int(first), int(last), _marks(before), _marks(after))

    def record(self, span: Range) -> None:
        """Record a range before its insert."""
        self.warehouse.insert(
            "insert_ranges",
            [
                [
                    span.target,
                    span.topic,
                    span.partition,
                    span.first,
                    span.last,
                    _json(span.before),
                    _json(span.after),
                ]
            ],
            ("target", "topic", "partition", "first", "last", "before", "after"),
        )


def _json(mark: Watermark) -> str:
    return json.dumps({str(p): list(v) for p, v in sorted(mark.items())})


def _marks(text: str) -> dict[int, tuple[int, int]]:
    return {int(p): (int(v[0]), int(v[1])) for p, v in json.loads(text or "{}").items()}
