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

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from alerts.conditions import Condition, InhibitRule, MuteWindow, RouteConfig
from alerts.episode import Episode, State, numbers, source_state
from alerts.mute import Mute
from infra.errors import ConfigError
from streams.records import Alert

SNAPSHOT_VERSION = 1
EVENTS_KEPT = 10_000
Action = Literal["notified", "held", "inhibited", "suppressed", "dropped"]
Silenced = Callable[[str, str, datetime], bool]


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
        self._mutes = tuple(Mute.of(window) for window in mute)
        self._silenced = silenced
        self._on_decision = on_decision
        self._groups: dict[tuple[str, str], Episode] = {}
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
                group = Episode(cond.ticker, cond.rule, cond.kind, started, now, numbers(cond))
                self._groups[cond.group] = group
                self._sources[cond.group] = (cond.kind, now)
                return
            if group.notified_at is not None and group.firing:
                self._decide(now, "suppressed", group, "firing", "cooldown")
            # Active again before the resolved notice went out: the same episode goes on.
            group.firing = True
            group.kind = cond.kind
            group.latest = numbers(cond)
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
        group.latest = {**numbers(cond), "resolved_at": now.astimezone(UTC).isoformat()}

    # -- output -------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Alert]:
        """Return the alerts to send now (see `notices` for their outbox keys)."""
        return [notice.alert for notice in self.notices(now)]

    def notices(self, now: datetime) -> list[Notice]:
        """Return the notifications to send now, and count them as sent."""
        out: list[Notice] = []
        for key in sorted(self._groups):
            group = self._groups[key]
            state: State = "firing" if group.firing else "resolved"
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
            alert = group.alert(state)
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
            "groups": [g.state() for g in self._groups.values()],
            "sources": [source_state(key, *value) for key, value in self._sources.items()],
        }

    def changes(self) -> list[tuple[str, str, str, dict[str, Any] | None]]:
        """Return what changed since the last call: (part, ticker, rule, state or None if gone).

        ``part`` is ``group`` or ``source``; the states are those of `snapshot`, so saved
        rows rebuild a snapshot (see `Router.restore`).
        """
        out: list[tuple[str, str, str, dict[str, Any] | None]] = []
        for key in sorted(self._dirty):
            group, source = self._groups.get(key), self._sources.get(key)
            out.append(("group", *key, None if group is None else group.state()))
            out.append(("source", *key, None if source is None else source_state(key, *source)))
        self._dirty.clear()
        return out

    def restore(self, state: dict[str, Any]) -> Router:
        """Load a `snapshot`'s groups and sources, whatever configuration made it; return self.

        Raises:
            ConfigError: the snapshot is of an unknown version or malformed.
        """
        if state.get("version") != SNAPSHOT_VERSION:
            msg = f"router snapshot version {state.get('version')!r} is not {SNAPSHOT_VERSION}"
            raise ConfigError(msg)
        try:
            for raw in state["groups"]:
                group = Episode.parse(raw)
                self._groups[(group.ticker, group.rule)] = group
            for raw in state["sources"]:
                since = datetime.fromisoformat(raw["since"])
                self._sources[(raw["ticker"], raw["rule"])] = (raw["kind"], since)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"router snapshot is malformed: {type(exc).__name__}: {exc}"
            raise ConfigError(msg) from exc
        return self

    # -- internals ----------------------------------------------------------------------

    def _is_due(self, group: Episode, now: datetime) -> bool:
        route = self.route
        if group.notified_at is None:
            return now >= group.since + timedelta(seconds=route.group_wait_s)
        wait = route.repeat_interval_s if group.firing else route.group_interval_s
        return now >= group.notified_at + timedelta(seconds=wait)

    def _hold(self, group: Episode, now: datetime) -> str:
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

    def _inhibitor(self, target: Episode, now: datetime) -> str:
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

    def _decide(
        self, now: datetime, action: Action, group: Episode, state: str, reason: str = ""
    ) -> None:
        decision = Decision(now, action, group.ticker, group.rule, group.alert_id, state, reason)
        self._events.append(decision)
        if self._on_decision is not None:
            self._on_decision(decision)
