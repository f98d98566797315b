"""The alerts agent: rules on every scored document, routed, persisted, delivered apart.

It consumes docs.scored (keyed by ticker, so a ticker's documents arrive in order on one
partition) and keeps each ticker's rule state in a Faust table. What the router says is
due goes into the outbox, then onto the alerts topic (which the store agent writes to
ClickHouse, the audit trail). A timer flushes the router every second, for notifications
that become due without a new document (group wait, repeat interval, a mute window's end).
The `alerts.deliverer.Deliverer` thread, started with the worker, does the sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from alerts.engine import AlertEngine
from infra.errors import DecodeError, SurveilError
from streams.app import Pipeline
from streams.records import Alert, Scored, utcnow

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0


def register(pipeline: Pipeline, engine: AlertEngine) -> Any:
    """Add the alerts agent (on docs.scored), its rule-state table and its flush timer."""
    app, topics, cfg, counters = pipeline.app, pipeline.topics, pipeline.config, pipeline.counters
    # Keyed by ticker, like docs.scored, so table and stream share partitions.
    states = app.Table("alert_rule_state", default=dict, partitions=cfg.partitions)

    async def publish(alerts: list[Alert]) -> None:
        for alert in alerts:
            await topics.alerts.send(key=alert.ticker, value=alert.to_json())

    async def flush() -> list[Alert]:
        loop = asyncio.get_running_loop()
        # The outbox is SQLite: keep its writes off the event loop.
        alerts: list[Alert] = await loop.run_in_executor(None, engine.flush, utcnow())
        await publish(alerts)
        return alerts

    async def rules(stream: Any) -> AsyncIterator[Alert]:
        async for value in stream:
            try:
                rec = Scored.parse(value)
            except DecodeError as err:
                counters.inc(f"alerts.invalid.{err.reason}")
                log.warning("alerts: skipping an invalid scored record: %s", err)
                continue
            states[rec.ticker] = engine.observe(dict(states[rec.ticker]), rec, utcnow())
            for alert in await flush():
                yield alert

    async def tick() -> None:
        await flush()

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
