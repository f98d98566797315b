"""The alert outbox: persist every notification first, deliver it later, never lose one.

One SQLite file (WAL) holds four tables: ``outbox`` (one row per notification key and
channel, pending until delivered or given up), ``attempts`` (every delivery attempt),
``silences`` and ``acks``. The CLI writes silences and acks while the worker runs, which
SQLite allows across processes. Times are integer microseconds since the epoch (UTC).

Delivery is at least once per (key, channel), and exactly once unless the process dies
between a notifier's successful send and `Outbox.record`: that row is still pending after a
restart and is sent once more. `alerts.deliverer.Deliverer` does the sending; run one per
outbox file.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import uuid
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, cast

from infra.errors import StoreError
from infra.sqlite import LockedSqlite, from_micros, micros
from streams.records import Alert, Delivery, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Status = Literal["pending", "delivered", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL,
    alert TEXT NOT NULL,
    created INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    done_at INTEGER,
    PRIMARY KEY (key, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at);
CREATE INDEX IF NOT EXISTS outbox_by_alert ON outbox (alert_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    status INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_alert ON attempts (alert_id, id);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    ticker TEXT,
    rule TEXT,
    until INTEGER NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created INTEGER NOT NULL,
    removed INTEGER
);
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL,
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS acks_by_alert ON acks (alert_id, id);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification waiting for delivery on one channel, with the attempts made so far."""

    key: str
    channel: str
    alert: Alert
    attempts: int


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
        status: pending, delivered or failed (gave up after ``max_attempts``).
        next_at: the next attempt's time while pending; done_at: when it was delivered or
            given up.
    """

    key: str
    channel: str
    state: str
    status: Status
    attempts: int
    created: datetime
    next_at: datetime | None
    done_at: datetime | None


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


def _attempt(key: str, channel: str, at: int, ok: int, status: int | None, detail: str) -> Attempt:
    """An attempt from its row (key, channel, at, ok, status, detail)."""
    delivery = Delivery(
        channel=channel, ok=bool(ok), status=status, detail=detail, at=from_micros(at)
    )
    return Attempt(key, delivery)


class Outbox(LockedSqlite):
    """The persistent outbox, silences and acks in one SQLite file; thread-safe.

    Args:
        path: the database file; it and its folder are created when missing.
        base: the first retry's ceiling in seconds; each failure doubles it.
        cap: the largest ceiling in seconds.
        max_attempts: attempts before a notification is marked ``failed``.
        clock: the current time (stamps rows).
        rand: a number in [0, 1) for the full jitter: the delay is ``rand() * ceiling``.

    Raises:
        StoreError: the file cannot be opened, is not a SQLite database, is corrupt, or was
            written by a newer surveil; the message names the file.
    """

    _label = "alert outbox"
    _error = StoreError

    def __init__(
        self,
        path: Path,
        *,
        base: float = 2.0,
        cap: float = 600.0,
        max_attempts: int = 10,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if base <= 0 or cap < base or max_attempts < 1:
            msg = "outbox needs base > 0, cap >= base and max_attempts >= 1"
            raise ValueError(msg)
        super().__init__(path)
        self.base, self.cap, self.max_attempts = base, cap, max_attempts
        self._clock = clock
        self._rand = rand
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            msg = f"alert outbox {path}: cannot open: {exc}"
            raise StoreError(msg) from exc
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        with self._guard() as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                msg = f"alert outbox {self.path}: corrupt: {'; '.join(problems[:3])}"
                raise StoreError(msg)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                msg = (
                    f"alert outbox {self.path}: schema version {version} is newer than "
                    f"this surveil's ({SCHEMA_VERSION})"
                )
                raise StoreError(msg)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a delivered mark lost to a power cut would mean a second notification.
            conn.execute("PRAGMA synchronous=FULL")
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- notifications ------------------------------------------------------------------

    def put(self, alert: Alert, channels: Sequence[str], key: str) -> bool:
        """Persist a notification for each channel, due at once; False if all were known.

        Args:
            alert: what to deliver.
            channels: the notifier names to deliver it to.
            key: names the notification, e.g. ``alert_id:state:repeat``; a (key, channel)
                pair is stored, and so delivered, once.
        """
        now = micros(self._clock())
        body = alert.model_dump_json()
        with self._guard() as conn, conn:
            added = 0
            for channel in dict.fromkeys(channels):
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO outbox (key, channel, alert_id, state, alert, created,"
                    " next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, channel, alert.alert_id, alert.state, body, now, now),
                )
                added += cursor.rowcount
        return added > 0

    def due(self, now: datetime, limit: int = 100) -> list[Pending]:
        """Return pending notifications whose next attempt time has come, oldest first."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT key, channel, alert, attempts FROM outbox"
                " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, created LIMIT ?",
                (micros(now), limit),
            ).fetchall()
        return [
            Pending(key, channel, Alert.model_validate_json(body), n)
            for key, channel, body, n in rows
        ]

    def delay(self, attempts: int) -> float:
        """Return the wait in seconds after ``attempts`` failed attempts (full jitter)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempts - 1, 0), 62))
        return self._rand() * ceiling

    def record(self, pending: Pending, delivery: Delivery, now: datetime) -> Status:
        """Store an attempt; mark delivered, or schedule the next try, or give up.

        Returns:
            the notification's status afterwards.
        """
        at = micros(now)
        with self._guard() as conn, conn:
            conn.execute(
                "INSERT INTO attempts (key, channel, alert_id, at, ok, status, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    pending.key,
                    pending.channel,
                    pending.alert.alert_id,
                    micros(delivery.at),
                    int(delivery.ok),
                    delivery.status,
                    delivery.detail,
                ),
            )
            row = conn.execute(
                "SELECT status, attempts FROM outbox WHERE key = ? AND channel = ?",
                (pending.key, pending.channel),
            ).fetchone()
            if row is None:
                msg = (
                    f"alert outbox {self.path}: no notification {pending.key} to {pending.channel}"
                )
                raise StoreError(msg)
            if row[0] != "pending":
                return cast(Status, row[0])
            attempts = row[1] + 1
            status: Status
            if delivery.ok:
                status, next_at, done_at = "delivered", None, at
            elif attempts >= self.max_attempts:
                status, next_at, done_at = "failed", None, at
            else:
                # a receiver's Retry-After is a floor: trying earlier only meets another 429
                wait = timedelta(seconds=max(self.delay(attempts), delivery.retry_after or 0.0))
                status, next_at, done_at = "pending", micros(now + wait), None
            conn.execute(
                "UPDATE outbox SET status = ?, attempts = ?, next_at = COALESCE(?, next_at),"
                " done_at = ? WHERE key = ? AND channel = ?",
                (status, attempts, next_at, done_at, pending.key, pending.channel),
            )
        return status

    def attempts(self, alert_id: str) -> list[Attempt]:
        """Return every delivery attempt of an alert's notifications, oldest first."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT key, channel, at, ok, status, detail FROM attempts WHERE alert_id = ?"
                " ORDER BY id",
                (alert_id,),
            ).fetchall()
        return [_attempt(*row) for row in rows]

    def attempts_after(self, last_id: int, limit: int = 5_000) -> list[tuple[int, str, Attempt]]:
        """Return (id, alert_id, attempt) of the attempts after ``last_id``, for the audit copy."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, alert_id, key, channel, at, ok, status, detail FROM attempts"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [(row_id, alert_id, _attempt(*rest)) for row_id, alert_id, *rest in rows]

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

    def deliveries(self, alert_id: str) -> list[Outcome]:
        """Return where each of an alert's notifications stands, per channel."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT key, channel, state, status, attempts, created, next_at, done_at"
                " FROM outbox WHERE alert_id = ? ORDER BY created, key, channel",
                (alert_id,),
            ).fetchall()
        return [
            Outcome(
                key=key,
                channel=channel,
                state=state,
                status=status,
                attempts=attempts,
                created=from_micros(created),
                next_at=from_micros(next_at) if status == "pending" else None,
                done_at=None if done_at is None else from_micros(done_at),
            )
            for key, channel, state, status, attempts, created, next_at, done_at in rows
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

    # -- silences and acks --------------------------------------------------------------

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
