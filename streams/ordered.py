"""Every record of an input partition delivered, in offset order, none skipped.

faust-streaming drops records it has fetched without moving the fetch position back: its
``Consumer.getmany`` stops iterating a fetch when the consumer generation changes or the flow
stops during a rebalance, and skips partitions that are paused at that moment. The fetcher has
already moved past those records, so the next fetch starts after them. Faust then sees a jump
in offsets and, taking it for a compacted topic's gap, counts the offsets in between as
acknowledged (``Consumer._add_gap``): they are committed without ever reaching an agent. In
the 3-broker kill test (tests/test_scaleout.py) that lost docs.raw offsets 8-14 of one
partition after a classify worker's rebalance, and left the store waiting for a range that
never came back; the gap logic has an open upstream bug of its own (faust-streaming #606).

The pipeline's input topics have no gaps of their own (no compaction, no transactional
producers), and the store's exactly-once ledger and the origin watermark (streams.ledger)
rely on each partition arriving in order. So for those topics `InOrderConsumer` knows the
next offset each partition must deliver (from the seeks Faust makes: committed offsets after
an assignment, the log start where nothing was committed) and, when a fetch skips ahead of
it, seeks back to it and drops what came early; records below it (a refetch) are dropped as
Faust drops them. A WARNING names the partition and the offsets refetched; the counter is
``refetches`` on the consumer. Records that retention deleted before they were read cannot
be fetched again: those are named in an ERROR and the partition goes on from the log start.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message
from mode import Service

log = logging.getLogger(__name__)

# Refetches of one offset after which the log's start is asked (retention may have gone past).
REFETCHES_BEFORE_LOG_START = 3
# How often the fetch positions are compared with what was delivered (see `_watch`).
WATCH_S = 5.0


class InOrderConsumer(driver.Consumer):  # Faust's classes are untyped
    """Faust's aiokafka consumer, delivering the app's ``in_order_topics`` without skips.

    Other topics (Faust's changelogs, which are compacted) pass through unchanged.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next: dict[TP, int] = {}
        self._sought: dict[TP, tuple[int, int]] = {}  # the offset last sought back to, times
        self._idle: dict[TP, int] = {}  # next offsets that did not move since the last watch
        self._yielding = False
        self.refetches = 0

    def _in_order(self, tp: TP) -> bool:
        topics: frozenset[str] = getattr(self.app, "in_order_topics", frozenset())
        return tp.topic in topics

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Yield fetched records as Faust does, each in-order partition without skips."""
        sought: set[TP] = set()  # seek back once per fetch: the rest of it came early too
        async for tp, message in super().getmany(timeout):
            expected = self._next.get(tp) if self._in_order(tp) else None
            if expected is not None:
                if message.offset < expected:
                    continue  # delivered already: a refetch
                if message.offset > expected:
                    if tp not in sought:
                        sought.add(tp)
                        expected = await self._refetch(tp, expected, message.offset)
                    if message.offset != expected:
                        continue
            if self._in_order(tp):
                self._next[tp] = message.offset + 1
            self._yielding = True  # until the drain loop comes back (an agent may be full)
            try:
                yield tp, message
            finally:
                self._yielding = False

    async def _refetch(self, tp: TP, expected: int, fetched: int) -> int:
        """Seek ``tp`` back to ``expected``; return the offset to deliver next.

        Records deleted by retention never come back (the fetcher resets to the log start):
        after a few refetches of the same offset, the log start is asked and, past it,
        taken as the next offset, with an ERROR naming what was lost.
        """
        last, tries = self._sought.get(tp, (expected, 0))
        tries = tries + 1 if last == expected else 1
        self._sought[tp] = (expected, tries)
        if tries >= REFETCHES_BEFORE_LOG_START:
            start = (await self.earliest_offsets(tp)).get(tp, expected)
            if start > expected:
                log.error(
                    "%s/%d: offsets %d-%d were deleted (retention) before they were read: "
                    "going on from %d, the log's start",
                    *(tp.topic, tp.partition, expected, start - 1, start),
                )
                self._next[tp] = start
                return start
        self.refetches += 1
        log.warning(
            "%s/%d: fetched offset %d while %d was not delivered yet: seeking back to %d "
            "(records skipped by the fetch)",
            *(tp.topic, tp.partition, fetched, expected, expected),
        )
        await super().seek(tp, expected)
        return expected

    @Service.task
    async def _watch(self) -> None:
        """Seek back a partition whose fetcher went past what was delivered, with nothing
        delivered since the last look and no record waiting for an agent: records Faust
        fetched and dropped at the end of what there was, which no later fetch shows."""
        while not self.should_stop:
            await self.sleep(WATCH_S)
            for tp in sorted(t for t in self.assignment() if self._in_order(t)):
                expected = None if self._yielding else self._next.get(tp)
                try:
                    position = await self.position(tp) if expected is not None else None
                except Exception as exc:  # e.g. revoked meanwhile: the next look will tell
                    log.debug("%s/%d: no position: %r", tp.topic, tp.partition, exc)
                    continue
                if expected is None or position is None or position <= expected:
                    self._idle.pop(tp, None)
                    continue
                if self._idle.get(tp) == expected:
                    active = tp in self._get_active_partitions()
                    log.warning(
                        "%s/%d: the fetcher is at %d but %d was not delivered, nothing for "
                        "%.0f s (partition %s): seeking back to %d",
                        *(tp.topic, tp.partition, position, expected, WATCH_S),
                        "active" if active else "paused",
                        expected,
                    )
                    self.refetches += 1
                    await super().seek(tp, expected)
                self._idle[tp] = expected

    async def perform_seek(self) -> None:
        """Seek to the committed offsets (Faust's), and learn each partition's next offset."""
        await super().perform_seek()
        assigned = [tp for tp in self.assignment() if self._in_order(tp)]
        for tp in assigned:
            offset = self._read_offset.get(tp)
            if offset is not None:
                self._next[tp] = offset
            else:
                self._next.pop(tp, None)
        fresh = [tp for tp in assigned if tp not in self._next]
        if fresh:  # nothing committed: the fetch starts at the log's start (offset reset)
            for tp, offset in (await self.earliest_offsets(*fresh)).items():
                self._next[tp] = offset
        log.info(
            "in order from: %s",
            ", ".join(f"{tp.topic}/{tp.partition}@{self._next.get(tp)}" for tp in sorted(assigned)),
        )

    async def seek(self, partition: TP, offset: int) -> None:
        """Seek a partition (Faust's seek); its next offset to deliver is ``offset``."""
        await super().seek(partition, offset)
        if self._in_order(partition):
            self._next[partition] = offset

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Forget the revoked partitions' next offsets (their new owner seeks again)."""
        self._forget(revoked)
        await super().on_partitions_revoked(revoked)

    def _forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            for known in (self._next, self._sought, self._idle):
                known.pop(tp, None)


class InOrderTransport(driver.Transport):
    """The aiokafka transport with `InOrderConsumer`."""

    Consumer = InOrderConsumer
