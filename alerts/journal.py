"""Silences and acknowledgements: the part of the alert outbox people write (the CLI).

They live in the outbox's SQLite file (tables ``silences`` and ``acks``), so a silence set
from the command line holds at once in a running worker; `alerts.audit` copies them into
ClickHouse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from infra.sqlite import LockedSqlite, from_micros, micros


@dataclass(frozen=True, slots=True)
class Silence:
    """Hold notifications of a ticker and/or rule (None: any) until ``until``."""

    id: str
    ticker: str | None
    rule: str | None
    until: datetime
    by: str
    reason: str
    created: datetime

    def covers(self, ticker: str, rule: str) -> bool:
        """Whether this silence applies to the group (ticker, rule)."""
        return self.ticker in (None, ticker) and self.rule in (None, rule)


@dataclass(frozen=True, slots=True)
class Ack:
    """Someone acknowledged an alert."""

    alert_id: str
    by: str
    note: str
    at: datetime


class Journal(LockedSqlite):
    """Silences and acks of an open outbox file (the base of `alerts.outbox.Outbox`)."""

    _clock: Callable[[], datetime]

    def find_alerts(self, prefix: str, limit: int = 10) -> dict[str, tuple[str, str]]:
        """Return the alerts in the outbox whose id starts with ``prefix``: id -> (ticker, rule)."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT alert_id, json_extract(min(alert), '$.ticker'),"
                " json_extract(min(alert), '$.rule') FROM outbox"
                " WHERE substr(alert_id, 1, ?) = ? GROUP BY alert_id ORDER BY alert_id LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        return {alert_id: (ticker, rule) for alert_id, ticker, rule in rows}

    def acks_after(self, last_id: int, limit: int = 5_000) -> list[tuple[int, Ack]]:
        """Return (id, ack) of the acknowledgements after ``last_id``, for the audit copy."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, alert_id, by, note, at FROM acks WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [(row_id, Ack(a, by, note, from_micros(at))) for row_id, a, by, note, at in rows]

    def all_silences(self) -> list[tuple[Silence, datetime | None]]:
        """Return every silence ever set, with when it was ended early (None: not ended)."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, ticker, rule, until, by, reason, created, removed FROM silences"
            ).fetchall()
        return [
            (
                Silence(sid, ticker, rule, from_micros(until), by, reason, from_micros(created)),
                from_micros(removed) if removed is not None else None,
            )
            for sid, ticker, rule, until, by, reason, created, removed in rows
        ]

    def silence(
        self, ticker: str | None, rule: str | None, until: datetime, by: str, reason: str
    ) -> str:
        """Hold notifications of a ticker and/or rule (None: any) until ``until``; return its id."""
        silence_id = uuid.uuid4().hex[:12]
        with self._guard() as conn, conn:
            conn.execute(
                "INSERT INTO silences (id, ticker, rule, until, by, reason, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (silence_id, ticker, rule, micros(until), by, reason, micros(self._clock())),
            )
        return silence_id

    def unsilence(self, silence_id: str) -> bool:
        """End a silence now; False if there is no such silence in force."""
        with self._guard() as conn, conn:
            cursor = conn.execute(
                "UPDATE silences SET removed = ? WHERE id = ? AND removed IS NULL",
                (micros(self._clock()), silence_id),
            )
        return cursor.rowcount > 0

    def silences(self, now: datetime) -> list[Silence]:
        """Return the silences in force at ``now``, soonest to end first."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, ticker, rule, until, by, reason, created FROM silences"
                " WHERE removed IS NULL AND until > ? ORDER BY until, id",
                (micros(now),),
            ).fetchall()
        return [
            Silence(sid, ticker, rule, from_micros(until), by, reason, from_micros(created))
            for sid, ticker, rule, until, by, reason, created in rows
        ]

    def is_silenced(self, ticker: str, rule: str, now: datetime) -> bool:
        """Whether a silence in force at ``now`` covers the group (ticker, rule)."""
        return any(s.covers(ticker, rule) for s in self.silences(now))

    def ack(self, alert_id: str, by: str, note: str = "") -> None:
        """Record that ``by`` acknowledged the alert."""
        with self._guard() as conn, conn:
            conn.execute(
                "INSERT INTO acks (alert_id, by, note, at) VALUES (?, ?, ?, ?)",
                (alert_id, by, note, micros(self._clock())),
            )

    def acks(self, alert_id: str) -> list[Ack]:
        """Return the acknowledgements of an alert, oldest first."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT by, note, at FROM acks WHERE alert_id = ? ORDER BY id", (alert_id,)
            ).fetchall()
        return [Ack(alert_id, by, note, from_micros(at)) for by, note, at in rows]
