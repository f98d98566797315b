"""The record side of the alert outbox: silences and acks people write (the CLI), and the
delivery record they read (attempts, where each notification stands).

They live in the outbox's SQLite file (tables ``silences``, ``acks``, ``attempts`` and
``outbox``), so a silence set from the command line holds at once in a running worker;
`alerts.audit` copies them into ClickHouse and `Journal.prune` then forgets the old rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from infra.sqlite import LockedSqlite, from_micros, micros
from streams.records import Delivery

Status = Literal["pending", "delivered", "failed", "unconfigured"]


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
class Attempt:
    """One delivery attempt of a notification, as stored."""

    key: str
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where one notification stands on one channel.

    Attributes:
        key: the notification key; state: firing or resolved.
        status: pending, delivered, failed (given up: older than ``give_up_after``), or
            unconfigured (no receiver for the channel: recorded, never sent).
        next_at: the next attempt's time while pending; done_at: when it was delivered or
            given up; late_at: when it was reported late (still undelivered).
    """

    key: str
    channel: str
    state: str
    status: Status
    attempts: int
    created: datetime
    next_at: datetime | None
    done_at: datetime | None
    late_at: datetime | None = None


def _moment(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _attempt(key: str, channel: str, at: int, ok: int, status: int | None, detail: str) -> Attempt:
    """An attempt from its row (key, channel, at, ok, status, detail)."""
    delivery = Delivery(
        channel=channel, ok=bool(ok), status=status, detail=detail, at=from_micros(at)
    )
    return Attempt(key, delivery)


@dataclass(frozen=True, slots=True)
class Ack:
    """Someone acknowledged an alert."""

    alert_id: str
    by: str
    note: str
    at: datetime


class Journal(LockedSqlite):
    """Silences, acks and delivery records of an open outbox (base of `alerts.outbox.Outbox`)."""

    _clock: Callable[[], datetime]

    def find_alerts(self, prefix: str, limit: int = 10) -> dict[str, tuple[str, str]]:
        """Return the alerts in the outbox whose id starts with ``prefix``: id -> (ticker, rule)."""
        rows = self._select(
            "SELECT alert_id, json_extract(min(alert), '$.ticker'),"
            " json_extract(min(alert), '$.rule') FROM outbox"
            " WHERE substr(alert_id, 1, ?) = ? GROUP BY alert_id ORDER BY alert_id LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return {alert_id: (ticker, rule) for alert_id, ticker, rule in rows}

    def acks_after(self, last_id: int, limit: int = 5_000) -> list[tuple[int, Ack]]:
        """Return (id, ack) of the acknowledgements after ``last_id``, for the audit copy."""
        rows = self._select(
            "SELECT id, alert_id, by, note, at FROM acks WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit),
        )
        return [(row_id, Ack(a, by, note, from_micros(at))) for row_id, a, by, note, at in rows]

    def all_silences(self) -> list[tuple[Silence, datetime | None]]:
        """Return every silence ever set, with when it was ended early (None: not ended)."""
        rows = self._select(
            "SELECT id, ticker, rule, until, by, reason, created, removed FROM silences"
        )
        return [
            (
                Silence(sid, ticker, rule, from_micros(until), by, reason, from_micros(created)),
                _moment(removed),
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
        rows = self._select(
            "SELECT id, ticker, rule, until, by, reason, created FROM silences"
            " WHERE removed IS NULL AND until > ? ORDER BY until, id",
            (micros(now),),
        )
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
        rows = self._select(
            "SELECT by, note, at FROM acks WHERE alert_id = ? ORDER BY id", (alert_id,)
        )
        return [Ack(alert_id, by, note, from_micros(at)) for by, note, at in rows]

    def attempts(self, alert_id: str) -> list[Attempt]:
        """Return every delivery attempt of an alert's notifications, oldest first."""
        rows = self._select(
            "SELECT key, channel, at, ok, status, detail FROM attempts WHERE alert_id = ?"
            " ORDER BY id",
            (alert_id,),
        )
        return [_attempt(*row) for row in rows]

    def attempts_after(self, last_id: int, limit: int = 5_000) -> list[tuple[int, str, Attempt]]:
        """Return (id, alert_id, attempt) of the attempts after ``last_id``, for the audit copy."""
        rows = self._select(
            "SELECT id, alert_id, key, channel, at, ok, status, detail FROM attempts"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit),
        )
        return [(row_id, alert_id, _attempt(*rest)) for row_id, alert_id, *rest in rows]

    def deliveries(self, alert_id: str) -> list[Outcome]:
        """Return where each of an alert's notifications stands, per channel."""
        rows = self._select(
            "SELECT key, channel, state, status, attempts, created, next_at, done_at,"
            " late_at FROM outbox WHERE alert_id = ? ORDER BY created, key, channel",
            (alert_id,),
        )
        return [
            Outcome(
                key,
                channel,
                state,
                status,
                attempts,
                from_micros(created),
                next_at=from_micros(next_at) if status == "pending" else None,
                done_at=_moment(done_at),
                late_at=_moment(late_at),
            )
            for key, channel, state, status, attempts, created, next_at, done_at, late_at in rows
        ]

    def prune(
        self, before: datetime, *, attempts_upto: int, acks_upto: int, silences: Set[str]
    ) -> int:
        """Forget what ended before ``before`` and is already copied elsewhere; return rows.

        Removes delivered or failed notifications done before ``before``; attempts made
        before it whose notification is gone; acks before it; silences that ended before it.
        Only rows already copied to ClickHouse go: attempts and acks up to the given ids,
        silences whose ids are given. The newest attempt and ack always stay, so SQLite never
        hands out an id again that the copy has seen. A notification key forgotten here
        would be delivered again if it were put again, so ``before`` bounds how far back a
        replay stays deduplicated.

        Args:
            before: the cutoff (e.g. now minus the ``alert_outbox_days`` setting).
            attempts_upto: the highest attempt id copied to ClickHouse.
            acks_upto: the highest ack id copied to ClickHouse.
            silences: ids of the silences copied to ClickHouse in their final version.
        """
        cutoff = micros(before)
        with self._guard() as conn, conn:
            removed = conn.execute(
                "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (cutoff,)
            ).rowcount
            removed += conn.execute(
                "DELETE FROM attempts WHERE at < ? AND id <= ?"
                " AND id < (SELECT max(id) FROM attempts) AND NOT EXISTS (SELECT 1 FROM outbox"
                " o WHERE o.key = attempts.key AND o.channel = attempts.channel)",
                (cutoff, attempts_upto),
            ).rowcount
            removed += conn.execute(
                "DELETE FROM acks WHERE at < ? AND id <= ? AND id < (SELECT max(id) FROM acks)",
                (cutoff, acks_upto),
            ).rowcount
            ended = conn.execute(
                "SELECT id FROM silences WHERE COALESCE(removed, until) < ?", (cutoff,)
            ).fetchall()
            gone = [(sid,) for (sid,) in ended if sid in silences]
            removed += conn.executemany("DELETE FROM silences WHERE id = ?", gone).rowcount
        return removed
