"""The alerts agent: rules on every scored document, routed, persisted, delivered apart.

It consumes docs.scored (keyed by ticker, so a ticker's documents arrive in order on one
partition) and keeps each ticker's rule state in a Faust table. What the router says is
due goes into the outbox, then onto the alerts topic (which the store agent writes to
ClickHouse, the audit trail). A timer flushes the router every second, for notifications
that become due without a new document (group wait, repeat interval, a mute window's end).
The `alerts.deliverer.Deliverer` thread, started with the worker, does the sending.

A batch of records is acknowledged only when the body comes back for the next one
(`streams.acks.batches`), so everything it causes is durable first, in this order: the
router's state (the outbox file, fsynced), then the rule state (the table, whose changelog
may lag). A crash between the two redelivers the batch against the older rule state; the
router sees the same conditions again and takes them as the same episodes. The alerts
topic is written from the outbox's unpublished notifications, so one lost to a crash is
published after the restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from functools import partial
from typing import Any, TypeVar

from alerts.engine import AlertEngine
from infra.errors import SurveilError
from streams.acks import batches, each, with_where
from streams.app import Pipeline
from streams.records import Alert, Scored, utcnow
from streams.steps import decode

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
BATCH = 100
BATCH_WITHIN_S = 0.05  # a notification due now waits at most this for its batch
T = TypeVar("T")


async def _off_loop(job: Callable[[], T]) -> T:
    """Run blocking work (the outbox is SQLite) in a worker thread."""
    return await asyncio.get_running_loop().run_in_executor(None, job)


PAGE = 256  # documents per stored page of a refs entry
Entry = dict[str, list[str]]


def _page(key: str, number: int) -> str:
    """The table key of page ``number`` of a refs entry (page 0 is the entry's own key)."""
    return key if number == 0 else f"{key}|{number}"


class _Pages:
    """Refs entries as pages of the rule-state table, and the pages as this worker last read
    or saved them.

    A busy bucket's entry lists thousands of documents. Stored whole, it was decoded from
    the table and encoded to it and to its changelog on every batch, which cost the agent
    more than everything else it does; stored in pages of `PAGE` documents, a batch writes
    only the pages it changed (mostly the last), and pages once read are kept. An entry is
    its pages' documents in page order. Entries are replaced, never changed in place
    (`streams.windows`), so a kept page is what the table holds while the worker owns its
    partition; the agent calls `forget` on every rebalance. ``{}`` is a page known absent.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.kept: dict[str, Entry] = {}

    def forget(self) -> None:
        """Drop every kept page (the partitions moved)."""
        self.kept.clear()

    def pages(self, key: str) -> list[Entry]:
        """The stored pages of an entry, in order (none when it is absent)."""
        found: list[Entry] = []
        while True:
            name = _page(key, len(found))
            if name not in self.kept:
                self.kept[name] = self.table[name] if name in self.table else {}
            if not self.kept[name]:
                return found
            found.append(self.kept[name])

    def save(self, key: str, entry: Entry | None) -> None:
        """Write the pages of ``entry`` that differ from the stored ones; drop the others
        (all of them when ``entry`` is None)."""
        old = self.pages(key)
        items = list((entry or {}).items())
        cuts = [items[i : i + PAGE] for i in range(0, len(items), PAGE)]
        for number, cut in enumerate(cuts):
            # Order counts (a bucket counts its entry's first documents), as dict == does not.
            if number >= len(old) or list(old[number].items()) != cut:
                self.table[_page(key, number)] = self.kept[_page(key, number)] = dict(cut)
        # Last page first: a save cut short leaves a shorter entry, never a gap in its pages.
        for number in reversed(range(len(cuts), len(old))):
            del self.table[_page(key, number)]
            self.kept[_page(key, number)] = {}


class _Refs(MutableMapping[str, Entry]):
    """One ticker's window refs (``TICKER|bucket`` entries, `_Pages`) as the batch changes
    them: read through to the pages, written to them only by `_Batch.save`."""

    def __init__(self, pages: _Pages) -> None:
        self.store = pages
        self.changed: dict[str, Entry | None] = {}

    def __getitem__(self, key: str) -> Entry:
        if key in self.changed:
            value = self.changed[key]
            if value is None:
                raise KeyError(key)
            return value
        pages = self.store.pages(key)
        if not pages:
            raise KeyError(key)
        if len(pages) == 1:
            return pages[0]
        entry: Entry = {}
        for page in pages:
            entry.update(page)
        return entry

    def __setitem__(self, key: str, value: Entry) -> None:
        self.changed[key] = value

    def __delitem__(self, key: str) -> None:
        self.changed[key] = None

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in self.changed.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self.changed.values() if v is not None)


class _Batch:
    """A batch's new rule states and refs, saved together once the router's are durable."""

    def __init__(self, table: Any, pages: _Pages) -> None:
        self.table = table
        self.pages = pages
        self.states: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, _Refs] = {}
        self._events: dict[str, Any] = {}

    def state(self, ticker: str) -> dict[str, Any]:
        """The ticker's state as of this batch."""
        if ticker in self.states:
            return self.states[ticker]
        return dict(self.table[ticker]) if ticker in self.table else {}

    def refs(self, ticker: str, event: Any) -> _Refs:
        """The ticker's refs as of this batch; ``event`` is one of the ticker's events."""
        self._events.setdefault(ticker, event)
        return self._refs.setdefault(ticker, _Refs(self.pages))

    def save(self, events: list[Any]) -> None:
        """Write refs, then states, then forget expired refs, each in its ticker's partition.

        One table, one partition per ticker: the changelog keeps this order, and a state
        is never on it without the refs it counts (`streams.windows` reads refs ahead of
        their state right).
        """
        by_event = {id(e): t for t, e in self._events.items()}
        for event in each(events):
            ticker = by_event.get(id(event))
            if ticker is None:
                continue
            changed = self._refs[ticker].changed
            for key, value in changed.items():
                if value is not None:
                    self.pages.save(key, value)
            self.table[ticker] = self.states[ticker]
            for key, value in changed.items():
                if value is None:
                    self.pages.save(key, None)


def register(pipeline: Pipeline, engine: AlertEngine) -> Any:
    """Add the alerts agent (on docs.scored), its rule-state table and its flush timer."""
    app, topics, cfg, counters = pipeline.app, pipeline.topics, pipeline.config, pipeline.counters
    # Keyed by ticker (and TICKER|bucket for the window refs), like docs.scored, so table
    # and stream share partitions.
    states = app.Table("alert_rule_state", default=dict, partitions=cfg.partitions)
    pages = _Pages(states)
    publishing = asyncio.Lock()

    async def forget(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Partitions move: what this worker read of them may not be what it will own.
        pages.forget()

    app.on_partitions_revoked.connect(forget)
    app.on_partitions_assigned.connect(forget)

    async def publish() -> None:
        # One at a time: the agent and the timer would otherwise publish a key twice.
        async with publishing:
            for key, alert in await _off_loop(engine.unpublished):
                # force: sent now, not attached to a record being processed (sent at its
                # commit), so it is on the topic before it is marked published.
                sent = await topics.alerts.send(key=alert.ticker, value=alert.to_json(), force=True)
                await sent  # done once the broker acknowledged it
                await _off_loop(partial(engine.published, [key]))

    async def flush() -> list[Alert]:
        alerts = await _off_loop(partial(engine.flush, utcnow()))
        await publish()
        return alerts

    async def rules(stream: Any) -> AsyncIterator[Alert]:
        async for events in batches(stream, BATCH, BATCH_WITHIN_S):
            batch = _Batch(states, pages)
            # each: reads and writes of the table go to the partition of their own event
            counters.inc("alerts.seen", len(events))
            for event in each(events):
                oks, errs = decode(with_where([event]), Scored, "alerts")
                for err in errs:  # dead-lettered by the store agent: counted here
                    counters.inc(f"rejected.alerts.{err.reason}")
                    log.warning("alerts: skipping an invalid scored record: %s", err.detail)
                if not oks:
                    continue
                rec = oks[0]
                refs = batch.refs(rec.ticker, event)
                batch.states[rec.ticker] = engine.observe(
                    batch.state(rec.ticker), rec, utcnow(), refs
                )
            # The router first: a crash before the table is written redelivers the batch.
            await pipeline.writes.call("alerts_router", _off_loop, engine.persist)
            batch.save(events)
            for alert in await pipeline.writes.call("alerts_flush", flush):
                yield alert

    async def tick() -> None:
        try:
            await flush()
        except Exception:  # the outbox or the broker away: kept, the next tick retries
            counters.inc("alerts.flush_errors")
            log.exception("alerts: flush or publish failed, will retry")

    timer: Any = app.timer(interval=FLUSH_EVERY_S)
    timer(tick)

    return app.agent(topics.scored, name="surveil.alerts", concurrency=1)(rules)


AUDIT_EVERY_S = 5.0
PRUNE_EVERY_S = 3_600.0


def register_audit(
    pipeline: Pipeline, sync: Callable[[], int], prune: Callable[[], int] | None = None
) -> None:
    """Copy the outbox journal into ClickHouse every few seconds, in the store thread.

    Args:
        pipeline: the worker's app, counters and store thread.
        sync: copies what is new; counted in ``alerts.audit_rows``.
        prune: forgets in the outbox what was copied and is old enough, hourly; counted in
            ``alerts.outbox_pruned``.
    """
    counters = pipeline.counters

    async def run(job: Callable[[], int], counter: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            counters.inc(counter, await loop.run_in_executor(pipeline.store_pool, job))
        except SurveilError as exc:  # ClickHouse busy or down: the outbox keeps it for later
            counters.inc("alerts.audit_errors")
            log.warning("%s: alert audit job failed, will retry: %s", counter, exc)

    async def copy() -> None:
        await run(sync, "alerts.audit_rows")

    timer: Any = pipeline.app.timer(interval=AUDIT_EVERY_S)
    timer(copy)
    if prune is not None:

        async def forget() -> None:
            await run(prune, "alerts.outbox_pruned")

        pruner: Any = pipeline.app.timer(interval=PRUNE_EVERY_S)
        pruner(forget)
