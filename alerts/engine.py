"""The alert engine: rules -> router -> outbox, the part of alerting that knows no Kafka.

Per scored document the evaluator updates its ticker's state and emits conditions; the
router groups them (ticker, rule), waits, throttles, inhibits, mutes and honours silences;
what is due is persisted in the outbox first, then returned for the audit topic. A
separate `alerts.deliverer.Deliverer` thread sends from the outbox with retries, so a Slack
or mail outage never holds up the stream.

The router's state is saved to a JSON file after each change, so a restart neither
re-notifies an episode nor forgets one that is firing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.conditions import RouteConfig
from alerts.evaluate import Evaluator
from alerts.outbox import Outbox
from alerts.router import Decision, Router
from alerts.ruleset import RuleSet, ThresholdSpec, load_ruleset
from infra.errors import ConfigError
from streams.counters import Counters
from streams.records import Alert, Scored

log = logging.getLogger(__name__)


def default_ruleset(
    threshold: float, min_docs: int, window_s: float, route: RouteConfig | None = None
) -> RuleSet:
    """The rules when no file is configured: one threshold rule on every ticker."""
    rule = ThresholdSpec(
        name="mean_score_below",
        threshold=threshold,
        min_docs=min_docs,
        window_s=window_s,
        severity="warning",
    )
    return RuleSet(rules=(rule,), route=route or RouteConfig())


def ruleset_from(path: Path | None, fallback: RuleSet) -> RuleSet:
    """Load the rules file, or use the fallback when none is configured."""
    return load_ruleset(path) if path is not None else fallback


class AlertEngine:
    """Evaluate rules per document and route what is due into the outbox.

    Args:
        ruleset: the rules, watchlists and routing.
        outbox: where notifications are persisted before delivery.
        channels: the names of the configured notifiers (a rule's ``channels`` picks some).
        state_file: where the router's state is kept between runs (None: memory only).
        counters: ``alerts.*`` counters.
        on_put: called after new notifications were put in the outbox.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        outbox: Outbox,
        channels: Sequence[str],
        state_file: Path | None = None,
        counters: Counters | None = None,
        on_put: Callable[[], None] | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.on_put = on_put
        self.evaluator = Evaluator(ruleset)
        self.outbox = outbox
        self.channels = tuple(channels)
        self.state_file = state_file
        self.counters = counters or Counters()
        self._lock = threading.Lock()
        self.router = self._router()

    def _router(self) -> Router:
        args: dict[str, Any] = {
            "route": self.ruleset.route,
            "inhibit": self.ruleset.inhibit,
            "mute": self.ruleset.mute,
            "silenced": self.outbox.is_silenced,
            "on_decision": self._decided,
        }
        if self.state_file is not None and self.state_file.is_file():
            try:
                state = json.loads(self.state_file.read_text("utf-8"))
                return Router.restore(state, **args)
            except (OSError, ValueError, ConfigError) as exc:
                log.error("router state %s unreadable, starting empty: %s", self.state_file, exc)
        return Router(**args)

    def _decided(self, decision: Decision) -> None:
        self.counters.inc(f"alerts.router.{decision.action}")
        level = logging.DEBUG if decision.action == "suppressed" else logging.INFO
        log.log(
            level,
            "alert %s %s %s/%s: %s",
            decision.action,
            decision.state,
            decision.ticker,
            decision.rule,
            decision.reason,
        )

    def observe(self, state: dict[str, Any], rec: Scored, now: datetime) -> dict[str, Any]:
        """Evaluate one scored document against its ticker's state; return the new state."""
        new_state, conditions = self.evaluator.observe(state, rec)
        with self._lock:
            for condition in conditions:
                self.router.observe(condition, now)
        self.counters.inc("alerts.conditions", len(conditions))
        return new_state

    def flush(self, now: datetime) -> list[Alert]:
        """Persist what the router says is due in the outbox; return those alerts."""
        with self._lock:
            notices = self.router.notices(now)
            if not notices:
                return []
            out = []
            for notice in notices:
                channels = self._channels(notice.alert.rule)
                if self.outbox.put(notice.alert, channels, notice.key):
                    self.counters.inc(f"alerts.{notice.alert.state}")
                    out.append(notice.alert)
            self._save()
        if out and self.on_put is not None:
            self.on_put()  # e.g. wake the deliverer: send now, not at its next poll
        return out

    def _channels(self, rule_name: str) -> list[str]:
        try:
            wanted = self.ruleset.rule(rule_name).channels
        except KeyError:
            wanted = ()
        return [c for c in self.channels if not wanted or c in wanted]

    def _save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.router.snapshot()), "utf-8")
        os.replace(tmp, self.state_file)
