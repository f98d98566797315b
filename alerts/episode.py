"""One router group's episode: what it remembers, the alert it sends, and its saved form.

The saved forms are JSON-ready dicts (`Episode.state`, `source_state`), rebuilt by
`Episode.parse`; the router saves them as rows and in its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from alerts.conditions import Condition
from streams.records import Alert, DocRef, stable_id

State = Literal["firing", "resolved"]


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def numbers(cond: Condition) -> dict[str, Any]:
    """Return what an alert reports of a condition, JSON-ready (an episode's ``latest``)."""
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


def source_state(key: tuple[str, str], kind: str, since: datetime) -> dict[str, Any]:
    """Return the saved form of an inhibition source: a group's kind and when it began."""
    return {"ticker": key[0], "rule": key[1], "kind": kind, "since": since.isoformat()}


@dataclass(slots=True)
class Episode:
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

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Episode:
        """Rebuild an episode from its `state`.

        Raises:
            KeyError, TypeError, ValueError: the state is malformed.
        """
        return cls(
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

    def state(self) -> dict[str, Any]:
        """Return the saved form, JSON-ready, for `parse`."""
        return {
            "ticker": self.ticker,
            "rule": self.rule,
            "kind": self.kind,
            "started": self.started.isoformat(),
            "since": self.since.isoformat(),
            "latest": self.latest,
            "firing": self.firing,
            "notified_at": self.notified_at.isoformat() if self.notified_at else None,
            "repeats": self.repeats,
        }

    def alert(self, state: State) -> Alert:
        """Return the alert this episode sends in ``state``, with its newest numbers."""
        n = self.latest
        return Alert(
            alert_id=self.alert_id,
            fingerprint=self.fingerprint,
            rule=self.rule,
            severity=n["severity"],
            ticker=self.ticker,
            fired_at=self.since.astimezone(UTC),
            value=n["value"],
            threshold=n["threshold"],
            window_start=datetime.fromisoformat(n["window_start"]),
            window_end=datetime.fromisoformat(n["window_end"]),
            documents=n["documents"],
            explanation=n["explanation"],
            evidence=tuple(DocRef.parse(doc) for doc in n["evidence"]),
            state=state,
            kind=self.kind,
            zscore=n["zscore"],
            model_version=n["model_version"],
            sources=tuple(n["sources"]),
            trigger_published_at=_dt(n["trigger_published_at"]),
            resolved_at=_dt(n.get("resolved_at")) if state == "resolved" else None,
        )
