"""The alert engine: rules -> router -> outbox, the part of alerting that knows no Kafka.

Per scored document the evaluator updates its ticker's state and emits conditions; the
router groups them (ticker, rule), waits, throttles, inhibits, mutes and honours silences;
what is due is persisted in the outbox first, then published on the audit topic. A
separate `alerts.deliverer.Deliverer` thread sends from the outbox with retries, so a Slack
or mail outage never holds up the stream.

The router's state lives in the outbox's SQLite file too: `AlertEngine.persist` saves what
changed (the agent calls it before the document is acknowledged), and `AlertEngine.flush`
saves the notifications due with the router state that says they were sent, in one
transaction. So a restart at any moment neither re-notifies an episode nor forgets one,
even one still in its group wait. A notification whose rule has no configured receiver is
recorded all the same, as ``unconfigured``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from alerts.conditions import RouteConfig
from alerts.evaluate import Evaluator
from alerts.outbox import NO_CHANNEL, Put, StateRow
from alerts.router import SNAPSHOT_VERSION, Decision, Router
from alerts.ruleset import RuleSet, ThresholdSpec, load_ruleset
from infra.errors import ConfigError
from streams.counters import Counters
from streams.records import Alert, Scored
from streams.windows import Refs

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


class Notices(Protocol):
    """Where the engine persists notifications and the router's state: the SQLite
    `alerts.outbox.Outbox` in the worker, `alerts.dryrun.DryRunOutbox` in a replay."""

    path: Path

    def is_silenced(self, ticker: str, rule: str, now: datetime) -> bool:
        """Whether a silence in force at ``now`` covers the group (ticker, rule)."""
        ...

    def router_state(self) -> list[tuple[str, str, str, str]]:
        """Return the saved router state rows: (part, ticker, rule, JSON value)."""
        ...

    def commit(self, puts: Sequence[Put], state: Sequence[StateRow] = ()) -> list[bool]:
        """Persist notifications and router state at once; say which puts were new."""
        ...

    def unpublished(self) -> list[tuple[str, Alert]]:
        """Return (key, alert) of notifications not yet on the alerts topic."""
        ...

    def mark_published(self, keys: Sequence[str]) -> None:
        """Note that these notifications are on the alerts topic."""
        ...


class AlertEngine:
    """Evaluate rules per document and route what is due into the outbox.

    Thread-safe: the agent observes on one thread while its timer flushes on another.

    Args:
        ruleset: the rules, watchlists and routing.
        outbox: where notifications and the router's state are persisted.
        channels: the names of the configured notifiers (a rule's ``channels`` picks some).
        legacy_state: a router state file of older versions (JSON), imported once when the
            outbox holds no router state yet, then renamed ``*.imported``.
        counters: ``alerts.*`` counters.
        on_put: called after new notifications were put in the outbox.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        outbox: Notices,
        channels: Sequence[str],
        legacy_state: Path | None = None,
        counters: Counters | None = None,
        on_put: Callable[[], None] | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.on_put = on_put
        self.evaluator = Evaluator(ruleset)
        self.outbox = outbox
        self.channels = tuple(channels)
        self.counters = counters or Counters()
        self._lock = threading.Lock()
        # Decided but not yet committed (a commit failed): kept, and sent with the next one.
        self._puts: list[Put] = []
        self._unsaved: dict[tuple[str, str, str], str | None] = {}
        self.router = self._router(legacy_state)

    def _router(self, legacy: Path | None) -> Router:
        args: dict[str, Any] = {
            "route": self.ruleset.route,
            "inhibit": self.ruleset.inhibit,
            "mute": self.ruleset.mute,
            "silenced": self.outbox.is_silenced,
            "on_decision": self._decided,
        }
        rows = self.outbox.router_state()
        try:
            if rows:
                parts: dict[str, list[Any]] = {"group": [], "source": []}
                for part, _, _, value in rows:
                    parts.setdefault(part, []).append(json.loads(value))
                state = {"version": SNAPSHOT_VERSION, "groups": parts["group"]}
                return Router(**args).restore({**state, "sources": parts["source"]})
            if legacy is not None and legacy.is_file():
                router = Router(**args).restore(json.loads(legacy.read_text("utf-8")))
                self._import(router, legacy)
                return router
        except (OSError, ValueError, ConfigError) as exc:
            log.error("router state in %s unreadable, starting empty: %s", self.outbox.path, exc)
        return Router(**args)

    def _import(self, router: Router, legacy: Path) -> None:
        snapshot = router.snapshot()
        rows: list[StateRow] = [
            ("group", g["ticker"], g["rule"], json.dumps(g)) for g in snapshot["groups"]
        ]
        rows += [("source", s["ticker"], s["rule"], json.dumps(s)) for s in snapshot["sources"]]
        self.outbox.commit([], rows)
        legacy.rename(legacy.with_suffix(".json.imported"))
        log.info("router state imported from %s into %s", legacy, self.outbox.path)

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

    def observe(
        self, state: dict[str, Any], rec: Scored, now: datetime, refs: Refs | None = None
    ) -> dict[str, Any]:
        """Evaluate one scored document against its ticker's state; return the new state.

        The router's change is in memory until `persist` (or `flush`) commits it: call that
        before the document is acknowledged, and before the new state is saved.

        Args:
            refs: the window engine's titles and doc ids (`streams.windows`); the
                evaluator's own in-memory ones when None.
        """
        new_state, conditions = self.evaluator.observe(state, rec, refs)
        with self._lock:
            for condition in conditions:
                self.router.observe(condition, now)
            if conditions:
                # What is due now goes out with the numbers as of this document, as a replay
                # sends it: the later documents of a batch must not rewrite it. The notices
                # wait in memory and are committed with the router's state (persist, flush).
                self._take_notices(now)
            self._collect()
        self.counters.inc("alerts.conditions", len(conditions))
        return new_state

    def persist(self) -> None:
        """Commit what the router decided and has not saved yet (fsynced when it returns).

        Raises:
            StateError: the outbox refused; nothing is lost, the next call tries again.
        """
        with self._lock:
            self._commit()

    def flush(self, now: datetime) -> list[Alert]:
        """Persist what the router says is due in the outbox; return the new alerts.

        Raises:
            StateError: the outbox refused; the notifications are kept for the next try.
        """
        with self._lock:
            self._take_notices(now)
            self._collect()
            out = self._commit()
        if out and self.on_put is not None:
            self.on_put()  # e.g. wake the deliverer: send now, not at its next poll
        return out

    def _take_notices(self, now: datetime) -> None:
        for notice in self.router.notices(now):
            channels, unconfigured = self._targets(notice.alert.rule)
            self._puts.append(Put(notice.alert, notice.key, channels, unconfigured))

    def unpublished(self) -> list[tuple[str, Alert]]:
        """Return the (key, alert) notifications not yet on the alerts topic."""
        return self.outbox.unpublished()

    def published(self, keys: Sequence[str]) -> None:
        """Note that these notifications reached the alerts topic."""
        self.outbox.mark_published(keys)

    def _collect(self) -> None:
        for part, ticker, rule, value in self.router.changes():
            self._unsaved[(part, ticker, rule)] = None if value is None else json.dumps(value)

    def _commit(self) -> list[Alert]:
        if not self._puts and not self._unsaved:
            return []
        rows = [(*key, value) for key, value in self._unsaved.items()]
        added = self.outbox.commit(self._puts, rows)
        out = []
        for put, new in zip(self._puts, added, strict=True):
            if not new:
                continue
            self.counters.inc(f"alerts.{put.alert.state}")
            out.append(put.alert)
            if put.unconfigured:
                self.counters.inc("alerts.no_receiver")
                log.warning(
                    "alert %s: no receiver configured for %s; recorded, not sent",
                    put.key,
                    ", ".join(c for c in put.unconfigured if c != NO_CHANNEL) or "any channel",
                )
        self._puts, self._unsaved = [], {}
        return out

    def _targets(self, rule_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return the configured channels of a rule's notifications, and those it lacks."""
        try:
            wanted = self.ruleset.rule(rule_name).channels
        except KeyError:
            wanted = ()
        if not wanted:
            return self.channels, () if self.channels else (NO_CHANNEL,)
        return (
            tuple(c for c in wanted if c in self.channels),
            tuple(c for c in wanted if c not in self.channels),
        )
