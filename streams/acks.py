"""Write, then acknowledge: the one place where an agent's input is acknowledged.

Every batching agent reads its topic through `batches` and makes its writes through
`Writes.call`::

    async for events in batches(stream, size, within):
        rows = ...
        await writes.call("store_scores", insert, rows)  # retried until it succeeds
        yield len(rows)
    # each batch is acknowledged when the body asks for the next one

A batch is acknowledged only when the loop body that handled it comes back for more. A
body that raises, or a worker stopped while a write is being retried, leaves the batch
unacknowledged: its offsets are not committed and Kafka hands it out again after a restart.
(Faust's own ``take_events`` acknowledges in a ``finally``, failed batches included.)

A failing write is retried with `infra.retry.Backoff` until it succeeds, never skipped; the
stall is visible: a WARNING per failed attempt with the error, the counter
``writes.<stage>.retries``, and the stage's state on the worker's ``/surveil/agents/`` page.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar

from faust.streams import _current_event  # Faust has no public setter

from infra.retry import Backoff
from streams.counters import Counters
from streams.records import utcnow
from streams.steps import Where

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
State = Literal["running", "stalled"]


async def batches(stream: Any, size: int, within: float) -> AsyncIterator[list[Any]]:
    """Yield up to ``size`` events at a time (or what came ``within`` seconds); ack each
    batch only once the caller asks for the next.

    Args:
        stream: the agent's Faust stream.
        size: the most events in one batch.
        within: seconds to wait for a batch to fill before yielding what there is.
    """
    async for events in stream.noack_take(size, within=within):
        yield events
        # Reached only when the body finished with this batch: what it wrote is written.
        for event in events:
            await stream.ack(event)


def each(events: list[Any]) -> Iterator[Any]:
    """Yield a batch's events, each in turn the current event of this task.

    A Faust table write goes to the changelog partition of the current event: without this,
    the table would find none (the batch was taken in another task) or a stale one. Only
    this task's context changes: the stream's ``current_event`` attribute belongs to the
    task that fills the batch, and changing it there corrupts the next batch.
    """
    token = _current_event.set(None)
    try:
        for event in events:
            _current_event.set(weakref.ref(event))
            yield event
    finally:
        _current_event.reset(token)


def with_where(events: list[Any]) -> list[tuple[Any, Where]]:
    """Pair each event's value with where it came from, for `streams.steps.decode`."""
    return [
        (e.value, Where(e.message.topic or "", e.message.partition, e.message.offset))
        for e in events
    ]


@dataclass
class Stage:
    """Where one agent's writes stand, for the worker's ``/surveil/agents/`` page.

    Attributes:
        state: running, or stalled (its last write failed and is being retried).
        batches: writes that succeeded.
        attempts: failed attempts of the write now being retried (0 when running).
        retries: failed attempts since the worker started.
        stalled_since: when the write now being retried first failed.
        last_error: the newest failure, e.g. ``StoreError: insert into scores failed: ...``.
        last_ok: when a write last succeeded.
    """

    state: State = "running"
    batches: int = 0
    attempts: int = 0
    retries: int = 0
    stalled_since: datetime | None = None
    last_error: str = ""
    last_ok: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the stage as JSON-ready data."""
        data = asdict(self)
        for key in ("stalled_since", "last_ok"):
            data[key] = data[key].isoformat() if data[key] is not None else None
        return data


class Writes:
    """Run agents' writes until they succeed, and keep each stage's state.

    Args:
        counters: counts ``writes.<stage>.retries`` and ``writes.<stage>.recovered``.
        backoff: the waits between attempts.
        sleep: waits between attempts (tests pass a fast one).
    """

    def __init__(
        self,
        counters: Counters,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._counters = counters
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._sleep = sleep
        self._stages: dict[str, Stage] = {}
        self._lock = threading.Lock()  # the stats page reads while agents write

    def stage(self, name: str) -> Stage:
        """Return a stage's state (created on first use)."""
        with self._lock:
            return self._stages.setdefault(name, Stage())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Return every stage's state, by name."""
        with self._lock:
            return {name: stage.to_json() for name, stage in sorted(self._stages.items())}

    async def call(
        self, name: str, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``write(*args, **kwargs)`` until it succeeds; return its result.

        Args:
            name: the stage, e.g. ``store_scores``.
            write: makes one attempt (e.g. an insert in a worker thread, sends to a topic);
                it must be safe to repeat, since a failed attempt may have written part.
        """
        stage = self.stage(name)
        started = 0.0
        while True:
            try:
                result = await write(*args, **kwargs)
            except Exception as exc:  # every failure is retried, none skipped: see module doc
                with self._lock:
                    if stage.state == "running":
                        stage.state, stage.stalled_since = "stalled", utcnow()
                        started = time.monotonic()
                    stage.attempts += 1
                    stage.retries += 1
                    stage.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    attempts = stage.attempts
                self._counters.inc(f"writes.{name}.retries")
                wait = self._backoff.delay(attempts)
                log.warning(
                    "%s: write failed (attempt %d), not acknowledged, retrying in %.1f s: %s",
                    name,
                    attempts,
                    wait,
                    stage.last_error,
                )
                await self._sleep(wait)
                continue
            with self._lock:
                recovered, attempts = stage.state == "stalled", stage.attempts
                stage.state, stage.attempts, stage.stalled_since = "running", 0, None
                stage.batches += 1
                stage.last_ok = utcnow()
            if recovered:
                self._counters.inc(f"writes.{name}.recovered")
                log.warning(
                    "%s: write succeeded after %d failed attempts (%.1f s stalled)",
                    name,
                    attempts,
                    time.monotonic() - started,
                )
            return result
