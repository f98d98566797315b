"""The alerts agent: evaluates rules on each signal, delivers, and records the alert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from alerts.base import Notifier
from alerts.rules import ThresholdRule
from infra.errors import DecodeError
from streams.app import Pipeline
from streams.records import Alert, Signal

log = logging.getLogger(__name__)


def deliver(alert: Alert, notifiers: Sequence[Notifier]) -> Alert:
    """Send an alert through every notifier; return it with the delivery results."""
    results = tuple(n.send(alert) for n in notifiers)
    return alert.model_copy(update={"deliveries": results})


def register(
    pipeline: Pipeline, rules: Sequence[ThresholdRule], notifiers: Sequence[Notifier]
) -> Any:
    """Add the alerts agent, consuming signals, and its per-ticker rule state table."""
    app, topics, cfg, counters = pipeline.app, pipeline.topics, pipeline.config, pipeline.counters
    # Keyed by ticker, like the signals topic, so table and stream share partitions.
    states = app.Table("alert_state", default=dict, partitions=cfg.partitions)

    async def alerts(stream: Any) -> AsyncIterator[Alert]:
        async for value in stream:
            try:
                signal = Signal.parse(value)
            except DecodeError as err:
                counters.inc(f"alerts.invalid.{err.reason}")
                log.warning("alerts: skipping invalid signal: %s", err)
                continue
            ticker_state: dict[str, Any] = dict(states[signal.ticker])
            for rule in rules:
                alert, new_state = rule.evaluate(signal, ticker_state.get(rule.name))
                if alert is None:
                    continue
                loop = asyncio.get_running_loop()
                alert = await loop.run_in_executor(None, deliver, alert, notifiers)
                ok = all(d.ok for d in alert.deliveries)
                counters.inc(f"alerts.{alert.state}")
                counters.inc("alerts.delivered" if ok else "alerts.delivery_failed")
                if new_state is None:
                    ticker_state.pop(rule.name, None)
                else:
                    ticker_state[rule.name] = new_state
                states[signal.ticker] = ticker_state
                await topics.alerts.send(key=alert.ticker, value=alert.to_json())
                yield alert

    return app.agent(topics.signals, name="surveil.alerts", concurrency=1)(alerts)
