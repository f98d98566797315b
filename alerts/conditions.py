"""What rules observe and what the router routes: a rule's condition on one ticker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from streams.records import DocRef

Kind = Literal["threshold", "shock", "negative_spike", "event"]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Condition:
    """A rule's verdict on one ticker after a document: active (breached) or not.

    Rules emit one whenever a document changes the verdict's inputs; the router turns the
    changes of ``active`` into firing and resolved alerts, grouped, throttled and muted.

    Attributes:
        rule: the rule's name (unique in its file).
        kind: what the rule measures.
        severity: as the rule says.
        ticker: the ticker it is about.
        active: True while the condition holds.
        value: the measured number (mean score, z-score, negative count, event probability).
        threshold: the number it is compared with.
        documents: documents in the rule's window (near-duplicates excluded).
        window_start: start of the rule's window (publication time).
        window_end: end of the window: the newest publication time seen.
        zscore: the window mean's z-score against the ticker's trailing baseline, if known.
        evidence: the documents that drove the value, most telling first (at most 5).
        trigger_published_at: publication time of the document that made it active.
        model_version: the model that scored the documents.
        sources: the sources of the documents in the window.
        explanation: one or two sentences with the numbers, for people.
    """

    rule: str
    kind: Kind
    severity: Severity
    ticker: str
    active: bool
    value: float
    threshold: float
    documents: int
    window_start: datetime
    window_end: datetime
    zscore: float | None = None
    evidence: tuple[DocRef, ...] = ()
    trigger_published_at: datetime | None = None
    model_version: str = ""
    sources: tuple[str, ...] = ()
    explanation: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> tuple[str, str]:
        """The router's group key: (ticker, rule)."""
        return (self.ticker, self.rule)


@dataclass(frozen=True)
class Matcher:
    """Selects conditions and alerts by rule name and/or kind (empty: any)."""

    rules: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(self, rule: str, kind: str) -> bool:
        """Whether a rule of that name and kind is selected."""
        return (not self.rules or rule in self.rules) and (not self.kinds or kind in self.kinds)


@dataclass(frozen=True)
class RouteConfig:
    """Alertmanager's timing, per group (ticker, rule).

    Attributes:
        group_wait_s: wait this long after a group first fires before notifying, so that
            a burst of documents gives one notification with the settled numbers.
        group_interval_s: the least time between two notifications of one group when its
            content changes (e.g. it resolves).
        repeat_interval_s: re-notify a group still firing no sooner than this (cooldown).
        send_resolved: send a resolved notification when the condition clears.
    """

    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    send_resolved: bool = True


@dataclass(frozen=True)
class InhibitRule:
    """While a ``source`` alert fires on a ticker (and ``duration_s`` after it fired),
    ``target`` alerts on the same ticker are muted (e.g. a trading halt or an 8-K event
    mutes sentiment alerts)."""

    source: Matcher
    target: Matcher
    duration_s: float = 3600.0


@dataclass(frozen=True)
class MuteWindow:
    """Times when notifications are held back (sent when the window ends, if still firing).

    Attributes:
        name: for messages and the audit trail.
        weekdays: 0 = Monday ... 6 = Sunday; empty means every day.
        start: "HH:MM" local time the mute begins; end: "HH:MM" it ends (may wrap midnight).
        timezone: IANA name, e.g. America/New_York.
    """

    name: str
    weekdays: tuple[int, ...] = ()
    start: str = "00:00"
    end: str = "24:00"
    timezone: str = "UTC"
