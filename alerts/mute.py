"""Mute windows: read from a rules file, then asked whether a moment falls inside one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from alerts.conditions import MuteWindow
from infra.errors import ConfigError
from infra.yamlnodes import NodeReader

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MUTE = frozenset({"name", "weekdays", "start", "end", "timezone"})
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def read_mutes(r: NodeReader, node: yaml.Node, where: str) -> tuple[MuteWindow, ...]:
    """Read the ``mute:`` list of a rules file; each problem goes to ``r``."""
    out = []
    for here, item in r.items(node, where):
        f = r.fields(item, here, _MUTE)
        if f is None:
            continue
        name = f.need("name", r.text)
        days = f.get("weekdays", partial(_weekdays, r)) or ()
        start = f.get("start", partial(_clock, r, False), "00:00")
        end = f.get("end", partial(_clock, r, True), "24:00")
        zone = f.get("timezone", partial(_zone, r), "UTC")
        if start is not None and start == end:
            r.fail(item, here, f"start and end are both {start}; the window would be empty")
        elif name and start and end and zone:
            out.append(MuteWindow(name, days, start, end, zone))
    return tuple(out)


def _weekdays(r: NodeReader, node: yaml.Node, where: str) -> tuple[int, ...]:
    days: set[int] = set()
    for here, item in r.items(node, where):
        text = (r.text(item, here) or "").lower()
        if text in WEEKDAYS or text in _DAY_NAMES:
            days.add(WEEKDAYS.index(text[:3]))
        elif text:
            r.fail(item, here, f"expected a weekday (mon ... sun), got {text!r}")
    return tuple(sorted(days))


def _clock(r: NodeReader, end: bool, node: yaml.Node, where: str) -> str | None:
    text = r.text(node, where)
    match = _CLOCK.match(text or "")
    hour, minute = (int(match.group(1)), int(match.group(2))) if match else (99, 99)
    if (hour, minute) == (24, 0) and end:
        return "24:00"
    if hour > 23 or minute > 59:
        if text is not None:
            r.fail(node, where, f"expected a time HH:MM (00:00 to 23:59), got {text!r}")
        return None
    return f"{hour:02d}:{minute:02d}"


def _zone(r: NodeReader, node: yaml.Node, where: str) -> str | None:
    name = r.text(node, where)
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        if name is not None:
            r.fail(node, where, f"unknown IANA time zone {name!r}")
        return None
    return name


def _minutes(hhmm: str, window: str) -> int:
    match = _HHMM.match(hhmm)
    if match is None or (match[1] == "24" and match[2] != "00"):
        msg = f"mute window {window!r}: {hhmm!r} is not HH:MM (00:00 to 24:00)"
        raise ConfigError(msg)
    return int(match[1]) * 60 + int(match[2])


@dataclass(frozen=True, slots=True)
class Mute:
    """A validated mute window, in minutes of the local day."""

    name: str
    weekdays: frozenset[int]
    start: int
    end: int
    zone: ZoneInfo

    @classmethod
    def of(cls, window: MuteWindow) -> Mute:
        """Validate a window.

        Raises:
            ConfigError: a bad time, weekday or time zone.
        """
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
