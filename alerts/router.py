"""The alert router: turn rule conditions into grouped, throttled, muted notifications.

Modelled on Alertmanager. One group per (ticker, rule); a group goes through episodes:

```
(none) --active--> firing --group_wait--> notified --inactive--> resolved --group_interval--> (none)
          inactive before group_wait: dropped, nothing sent   repeat_interval: notified again
```

Inhibitions, mute windows and silences only delay a notification: it goes out once nothing
blocks it, if it is still relevant (a firing that resolved while held is dropped). Every
decision is kept as a `Decision` for logs and counters (`Router.events`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.conditions import Condition, InhibitRule, MuteWindow, RouteConfig
from infra.errors import ConfigError
from streams.records import Alert, DocRef, stable_id

SNAPSHOT_VERSION = 1
EVENTS_KEPT = 10_000
Action = Literal["notified", "held", "inhibited", "suppressed", "dropped"]
Silenced = Callable[[str, str, datetime], bool]
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def notification_key(alert_id: str, state: str, repeat: int) -> str:
    """Return the outbox key of one notification: each is delivered once per channel."""
    return f"{alert_id}:{state}:{repeat}"


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to send now: the alert and its outbox key.

    Attributes:
        alert: what to deliver.
        key: ``alert_id:state:repeat``, for `alerts.outbox.Outbox.put`.
        repeat: 0 for the first firing notification of an episode, then 1, 2, ...
    """

    alert: Alert
    key: str
    repeat: int


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision, for the audit log and counters.

    Attributes:
        at: when it was taken (the router's ``now``).
        action: notified, held (mute or silence), inhibited, suppressed (cooldown), or
            dropped (resolved before anything was sent).
        ticker: the group's ticker; rule: the group's rule.
        alert_id: the episode's alert id.
        state: firing or resolved.
        reason: e.g. ``mute:overnight``, ``silence``, ``inhibited_by:halt``, ``cooldown``.
    """

    at: datetime
    action: Action
    ticker: str
    rule: str
    alert_id: str
    state: str
    reason: str = ""


@dataclass(slots=True)
class _Group:
    """The state of one (ticker, rule) group during one episode."""

    ticker: str
    rule: str
    kind: str
    started: datetime  # event time the episode began: names the alert
    since: datetime  # processing time it began: group_wait counts from here
    latest: dict[str, Any]  # the numbers of the newest condition, JSON-ready
    firing: bool = True
    notified_at: datetime | None = None
    repeats: int = 0  # firing notifications sent in this episode
    blocked: str = ""  # the last hold reason recorded, so each is logged once

    @property
    def fingerprint(self) -> str:
        return stable_id("alert", self.rule, self.ticker)

    @property
    def alert_id(self) -> str:
        return stable_id(self.fingerprint, self.started.isoformat())


def _group_state(g: _Group) -> dict[str, Any]:
    return {
        "ticker": g.ticker,
        "rule": g.rule,
        "kind": g.kind,
        "started": g.started.isoformat(),
        "since": g.since.isoformat(),
        "latest": g.latest,
        "firing": g.firing,
        "notified_at": g.notified_at.isoformat() if g.notified_at else None,
        "repeats": g.repeats,
    }


def _source_state(key: tuple[str, str], kind: str, since: datetime) -> dict[str, Any]:
    return {"ticker": key[0], "rule": key[1], "kind": kind, "since": since.isoformat()}


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _numbers(cond: Condition) -> dict[str, Any]:
    return {
        "severity": cond.severity,
        "value": cond.value,
        "threshold": cond.threshold,
        "documents": cond.documents,
        "window_start": cond.window_start.isoformat(),
        "window_end": cond.window_end.isoformat(),
        "zscore": cond.zscore,
        "evidence": [doc.to_json() for doc in cond.evidence],
        "trigger_published_at": (
            cond.trigger_published_at.isoformat() if cond.trigger_published_at else None
        ),
        "model_version": cond.model_version,
        "sources": list(cond.sources),
        "explanation": cond.explanation,
    }


def _minutes(hhmm: str, window: str) -> int:
    match = _HHMM.match(hhmm)
    if match is None or (match[1] == "24" and match[2] != "00"):
        msg = f"mute window {window!r}: {hhmm!r} is not HH:MM (00:00 to 24:00)"
        raise ConfigError(msg)
    return int(match[1]) * 60 + int(match[2])


@dataclass(frozen=True, slots=True)
class _Mute:
    """A validated mute window, in minutes of the local day."""

    name: str
    weekdays: frozenset[int]
    start: int
    end: int
    zone: ZoneInfo

    @classmethod
    def of(cls, window: MuteWindow) -> _Mute:
        try:
            zone = ZoneInfo(window.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"mute window {window.name!r}: unknown time zone {window.timezone!r}"
            raise ConfigError(msg) from exc
        if any(day not in range(7) for day in window.weekdays):
            msg = f"mute window {window.name!r}: weekdays run from 0 (Monday) to 6 (Sunday)"
            raise ConfigError(msg)
        days = frozenset(window.weekdays) or frozenset(range(7))
        start, end = _minutes(window.start, window.name), _minutes(window.end, window.name)
        return cls(window.name, days, start, end, zone)

    def covers(self, now: datetime) -> bool:
        """Whether ``now`` is inside the window (a wrapping window belongs to its start day)."""
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute + local.second / 60
        if self.start < self.end:
            return local.weekday() in self.weekdays and self.start <= minute < self.end
        if self.start == self.end:
            return False
        # Wraps midnight: 22:00-06:00 on Friday covers Friday 22:00 to Saturday 06:00.
        yesterday = (local.weekday() - 1) % 7
        return (local.weekday() in self.weekdays and minute >= self.start) or (
            yesterday in self.weekdays and minute < self.end
        )


class Router:
    """Group conditions per (ticker, rule) and decide which notifications are due.

    Not thread-safe: call it from one task (the alerts agent).

    Args:
        route: the timing (group wait, group interval, repeat interval, send resolved).
        inhibit: rules by which a firing group mutes other groups on its ticker.
        mute: windows during which every notification is held.
        silenced: ``silenced(ticker, rule, now)``, e.g. `alerts.outbox.Outbox.is_silenced`;
            a silenced group is held like a muted one.
        on_decision: called with each `Decision` as it is taken (logs, counters).

    Raises:
        ConfigError: a mute window has a bad time, weekday or time zone.
    """

    def __init__(
        self,
        route: RouteConfig,
        inhibit: Sequence[InhibitRule] = (),
        mute: Sequence[MuteWindow] = (),
        silenced: Silenced | None = None,
        *,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> None:
        self.route = route
        self._inhibit = tuple(inhibit)
        self._mutes = tuple(_Mute.of(window) for window in mute)
        self._silenced = silenced
        self._on_decision = on_decision
        self._groups: dict[tuple[str, str], _Group] = {}
        # (ticker, rule) -> (kind, processing time its last episode began), kept after the
        # group is gone: an event that fired and cleared at once still inhibits for duration_s.
        self._sources: dict[tuple[str, str], tuple[str, datetime]] = {}
        # Bounded: a caller that only uses on_decision never drains it.
        self._events: deque[Decision] = deque(maxlen=EVENTS_KEPT)
        # Groups and sources changed since `changes` last ran: what to save, and only that.
        self._dirty: set[tuple[str, str]] = set()

    # -- input --------------------------------------------------------------------------

    def observe(self, cond: Condition, now: datetime) -> None:
        """Update the condition's group: start, refresh, or resolve an episode.

        A condition seen again (a redelivered document evaluated against an older rule
        state) goes on the same episode: it is not notified twice.
        """
        self._dirty.add(cond.group)
        group = self._groups.get(cond.group)
        if cond.active:
            if group is None:
                started = cond.trigger_published_at or cond.window_end
                group = _Group(cond.ticker, cond.rule, cond.kind, started, now, _numbers(cond))
                self._groups[cond.group] = group
                self._sources[cond.group] = (cond.kind, now)
                return
            if group.notified_at is not None and group.firing:
                self._decide(now, "suppressed", group, "firing", "cooldown")
            # Active again before the resolved notice went out: the same episode goes on.
            group.firing = True
            group.kind = cond.kind
            group.latest = _numbers(cond)
            return
        if group is None or not group.firing:
            return
        if group.notified_at is None:
            # Nobody heard of it (group_wait, or held): nothing to resolve.
            self._decide(now, "dropped", group, "firing", "resolved before notified")
            del self._groups[cond.group]
            return
        if not self.route.send_resolved:
            del self._groups[cond.group]
            return
        group.firing = False
        group.blocked = ""
        # Cleared at the router's now, the clock fired_at (group.since) is read on; kept in
        # latest so a snapshot carries it and a return to firing drops it.
        group.latest = {**_numbers(cond), "resolved_at": now.astimezone(UTC).isoformat()}

    # -- output -------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Alert]:
        """Return the alerts to send now (see `notices` for their outbox keys)."""
        return [notice.alert for notice in self.notices(now)]

    def notices(self, now: datetime) -> list[Notice]:
        """Return the notifications to send now, and count them as sent."""
        out: list[Notice] = []
        for key in sorted(self._groups):
            group = self._groups[key]
            state: Literal["firing", "resolved"] = "firing" if group.firing else "resolved"
            if not self._is_due(group, now):
                continue
            reason = self._hold(group, now)
            if reason:
                if reason != group.blocked:
                    group.blocked = reason
                    action: Action = "inhibited" if reason.startswith("inhibited") else "held"
                    self._decide(now, action, group, state, reason)
                continue
            group.blocked = ""
            self._dirty.add(key)
            repeat = group.repeats if group.firing else 0
            alert = self._alert(group, state)
            out.append(Notice(alert, notification_key(alert.alert_id, state, repeat), repeat))
            self._decide(now, "notified", group, state, f"repeat {repeat}" if repeat else "")
            group.notified_at = now
            if group.firing:
                group.repeats += 1
            else:
                del self._groups[key]
        self._prune(now)
        return out

    def events(self) -> list[Decision]:
        """Return the decisions taken since the last call, oldest first."""
        events = list(self._events)
        self._events.clear()
        return events

    def firing(self) -> list[tuple[str, str]]:
        """Return the (ticker, rule) groups now firing."""
        return sorted(key for key, group in self._groups.items() if group.firing)

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the router's state as JSON-ready data, for `Router.restore`."""
        return {
            "version": SNAPSHOT_VERSION,
            "groups": [_group_state(g) for g in self._groups.values()],
            "sources": [_source_state(key, *value) for key, value in self._sources.items()],
        }

    def changes(self) -> list[tuple[str, str, str, dict[str, Any] | None]]:
        """Return what changed since the last call: (part, ticker, rule, state or None if gone).

        ``part`` is ``group`` or ``source``; the states are those of `snapshot`, so saved
        rows rebuild a snapshot (see `Router.restore`).
        """
        out: list[tuple[str, str, str, dict[str, Any] | None]] = []
        for key in sorted(self._dirty):
            group, source = self._groups.get(key), self._sources.get(key)
            out.append(("group", *key, None if group is None else _group_state(group)))
            out.append(("source", *key, None if source is None else _source_state(key, *source)))
        self._dirty.clear()
        return out

    @classmethod
    def restore(
        cls,
        state: dict[str, Any],
        route: RouteConfig,
        inhibit: Sequence[InhibitRule] = (),
        mute: Sequence[MuteWindow] = (),
        silenced: Silenced | None = None,
        *,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> Router:
        """Build a router from a `snapshot`, with the given (possibly new) configuration.

        Raises:
            ConfigError: the snapshot is of an unknown version or malformed.
        """
        router = cls(route, inhibit, mute, silenced, on_decision=on_decision)
        if state.get("version") != SNAPSHOT_VERSION:
            msg = f"router snapshot version {state.get('version')!r} is not {SNAPSHOT_VERSION}"
            raise ConfigError(msg)
        try:
            for raw in state["groups"]:
                group = _Group(
                    ticker=raw["ticker"],
                    rule=raw["rule"],
                    kind=raw["kind"],
                    started=datetime.fromisoformat(raw["started"]),
                    since=datetime.fromisoformat(raw["since"]),
                    latest=dict(raw["latest"]),
                    firing=bool(raw["firing"]),
                    notified_at=_dt(raw["notified_at"]),
                    repeats=int(raw["repeats"]),
                )
                router._groups[(group.ticker, group.rule)] = group
            for raw in state["sources"]:
                since = datetime.fromisoformat(raw["since"])
                router._sources[(raw["ticker"], raw["rule"])] = (raw["kind"], since)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"router snapshot is malformed: {type(exc).__name__}: {exc}"
            raise ConfigError(msg) from exc
        return router

    # -- internals ----------------------------------------------------------------------

    def _is_due(self, group: _Group, now: datetime) -> bool:
        route = self.route
        if group.notified_at is None:
            return now >= group.since + timedelta(seconds=route.group_wait_s)
        wait = route.repeat_interval_s if group.firing else route.group_interval_s
        return now >= group.notified_at + timedelta(seconds=wait)

    def _hold(self, group: _Group, now: datetime) -> str:
        """Return why the group may not be notified now, or an empty string."""
        for window in self._mutes:
            if window.covers(now):
                return f"mute:{window.name}"
        if self._silenced is not None and self._silenced(group.ticker, group.rule, now):
            return "silence"
        # A resolved notice closes an episode people saw: inhibition holds firings only.
        if group.firing:
            source = self._inhibitor(group, now)
            if source:
                return f"inhibited_by:{source}"
        return ""

    def _inhibitor(self, target: _Group, now: datetime) -> str:
        for rule in self._inhibit:
            if not rule.target.matches(target.rule, target.kind):
                continue
            for (ticker, name), (kind, since) in self._sources.items():
                if ticker != target.ticker or name == target.rule:
                    continue
                if not rule.source.matches(name, kind):
                    continue
                other = self._groups.get((ticker, name))
                still_firing = other is not None and other.firing
                if still_firing or now < since + timedelta(seconds=rule.duration_s):
                    return name
        return ""

    def _prune(self, now: datetime) -> None:
        longest = max((rule.duration_s for rule in self._inhibit), default=0.0)
        horizon = now - timedelta(seconds=longest)
        for key, (_, since) in list(self._sources.items()):
            if since < horizon and key not in self._groups:
                del self._sources[key]
                self._dirty.add(key)

    def _alert(self, group: _Group, state: Literal["firing", "resolved"]) -> Alert:
        n = group.latest
        return Alert(
            alert_id=group.alert_id,
            fingerprint=group.fingerprint,
            rule=group.rule,
            severity=n["severity"],
            ticker=group.ticker,
            fired_at=group.since.astimezone(UTC),
            value=n["value"],
            threshold=n["threshold"],
            window_start=datetime.fromisoformat(n["window_start"]),
            window_end=datetime.fromisoformat(n["window_end"]),
            documents=n["documents"],
            explanation=n["explanation"],
            evidence=tuple(DocRef.parse(doc) for doc in n["evidence"]),
            state=state,
            kind=group.kind,
            zscore=n["zscore"],
            model_version=n["model_version"],
            sources=tuple(n["sources"]),
            trigger_published_at=_dt(n["trigger_published_at"]),
            resolved_at=_dt(n.get("resolved_at")) if state == "resolved" else None,
        )

    def _decide(
        self, now: datetime, action: Action, group: _Group, state: str, reason: str = ""
    ) -> None:
        decision = Decision(now, action, group.ticker, group.rule, group.alert_id, state, reason)
        self._events.append(decision)
        if self._on_decision is not None:
            self._on_decision(decision)
