"""The alert outbox: persist every notification first, deliver it later, never lose one.

One SQLite file (WAL, fsynced on every commit) holds five tables: ``outbox`` (one row per
notification key and channel, pending until delivered or given up, or ``unconfigured`` when
no receiver exists for the channel), ``attempts`` (every delivery attempt), ``silences``,
``acks`` and ``router`` (the alert router's groups, saved in the same transaction as the
notifications they produce, so a restart finds both or neither). The CLI writes silences
and acks while the worker runs, which SQLite allows across processes. Times are integer
microseconds since the epoch (UTC).

A failing delivery is retried with capped backoff until it is delivered or older than
``give_up_after`` (then ``failed``, kept visible). Delivery is at least once per (key,
channel), and exactly once unless the process dies between a notifier's successful send and
`Outbox.record`: that row is still pending after a restart and is sent once more.
`alerts.deliverer.Deliverer` does the sending; run one per outbox file.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from alerts.journal import Journal, Status
from infra.errors import StateError
from infra.retry import Backoff
from infra.sqlite import from_micros, micros, run_script
from streams.records import Alert, Delivery, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# The channel of a notification that had no channel at all to go to.
NO_CHANNEL = "*"

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
# Version 2: published (on the alerts topic; rows of version 1 were), late_at (reported
# late), and the router's state.
_MIGRATE_2 = """
ALTER TABLE outbox ADD COLUMN published INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN late_at INTEGER;
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (created) WHERE published = 0;
CREATE TABLE IF NOT EXISTS router (
    part TEXT NOT NULL,
    ticker TEXT NOT NULL,
    rule TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (part, ticker, rule)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification waiting for delivery on one channel, with the attempts made so far."""

    key: str
    channel: str
    alert: Alert
    attempts: int
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Put:
    """A notification to persist: the alert, its key, and where it goes.

    Attributes:
        channels: the configured notifiers to deliver it to.
        unconfigured: channels it should go to that have no receiver: recorded only.
    """

    alert: Alert
    key: str
    channels: tuple[str, ...]
    unconfigured: tuple[str, ...] = ()


# A router state row: (part, ticker, rule, JSON value, or None to delete it).
StateRow = tuple[str, str, str, str | None]


def _pending(key: str, channel: str, body: str, attempts: int, created: int) -> Pending:
    """A pending notification from its row (key, channel, alert, attempts, created)."""
    return Pending(key, channel, Alert.model_validate_json(body), attempts, from_micros(created))


def _migrate(conn: sqlite3.Connection, found: int) -> None:
    """Create the tables, or bring a file of schema version ``found`` up to date."""
    run_script(conn, _SCHEMA + (_MIGRATE_2 if found < 2 else ""))


class Outbox(Journal):
    """The persistent outbox, silences, acks and router state in one SQLite file; thread-safe.

    Args:
        path: the database file; it and its folder are created when missing.
        base: the first retry's ceiling in seconds; each failure doubles it.
        cap: the largest ceiling in seconds (the longest wait between two tries).
        give_up_after: seconds after which a notification still failing is marked
            ``failed`` (kept, and shown, as undeliverable).
        clock: the current time (stamps rows).
        rand: a number in [0, 1) for the full jitter: the delay is ``rand() * ceiling``.

    Raises:
        StateError: the file cannot be opened, is not a SQLite database, is corrupt, or was
            written by a newer surveil; the message names the file.
        ValueError: base, cap or give_up_after cannot work.
    """

    _label = "alert outbox"
    _error = StateError

    def __init__(
        self,
        path: Path,
        *,
        base: float = 2.0,
        cap: float = 120.0,
        give_up_after: float = 86_400.0,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if give_up_after <= 0:
            msg = f"outbox needs give_up_after > 0, got {give_up_after}"
            raise ValueError(msg)
        super().__init__(path)
        self.give_up_after = give_up_after
        self._clock = clock
        self._backoff = Backoff(base, cap, rand)  # the one retry policy; it checks base and cap
        # FULL: a commit is on disk when it returns; a delivered mark lost to a power cut
        # would mean a second notification, a lost router group a missed one.
        self._connect(SCHEMA_VERSION, "FULL", _migrate)

    # -- notifications ------------------------------------------------------------------

    def put(
        self, alert: Alert, channels: Sequence[str], key: str, unconfigured: Sequence[str] = ()
    ) -> bool:
        """Persist a notification for each channel, due at once; False if all were known.

        Args:
            alert: what to deliver.
            channels: the notifier names to deliver it to.
            key: names the notification, e.g. ``alert_id:state:repeat``; a (key, channel)
                pair is stored, and so delivered, once.
            unconfigured: channels without a receiver: stored as ``unconfigured``, not sent.
        """
        [added] = self.commit([Put(alert, key, tuple(channels), tuple(unconfigured))])
        return added

    def commit(self, puts: Sequence[Put], state: Sequence[StateRow] = ()) -> list[bool]:
        """Persist notifications and router state in one transaction; say which puts were new.

        Either everything is on disk when this returns, or (StateError) nothing is.
        """
        now = micros(self._clock())
        added: list[bool] = []
        with self._guard() as conn, conn:
            for put in puts:
                body = put.alert.model_dump_json()
                rows: list[tuple[str, str, int | None]] = [
                    (c, "pending", None) for c in dict.fromkeys(put.channels)
                ]
                rows += [(c, "unconfigured", now) for c in dict.fromkeys(put.unconfigured)]
                count = 0
                for channel, status, done_at in rows:
                    count += conn.execute(
                        "INSERT OR IGNORE INTO outbox (key, channel, alert_id, state, alert,"
                        " created, status, next_at, done_at, published)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                        (put.key, channel, put.alert.alert_id, put.alert.state, body, now,
                         status, now, done_at),
                    ).rowcount  # fmt: skip
                added.append(count > 0)
            for part, ticker, rule, value in state:
                if value is None:
                    conn.execute(
                        "DELETE FROM router WHERE part = ? AND ticker = ? AND rule = ?",
                        (part, ticker, rule),
                    )
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO router (part, ticker, rule, value)"
                        " VALUES (?, ?, ?, ?)",
                        (part, ticker, rule, value),
                    )
        return added

    def router_state(self) -> list[tuple[str, str, str, str]]:
        """Return the saved router state rows: (part, ticker, rule, JSON value)."""
        rows = self._select(
            "SELECT part, ticker, rule, value FROM router ORDER BY part, ticker, rule"
        )
        return [(p, t, r, v) for p, t, r, v in rows]

    def unpublished(self, limit: int = 100) -> list[tuple[str, Alert]]:
        """Return (key, alert) of notifications not yet on the alerts topic, oldest first."""
        rows = self._select(
            "SELECT key, alert FROM outbox WHERE published = 0 GROUP BY key"
            " ORDER BY min(created), key LIMIT ?",
            (limit,),
        )
        return [(key, Alert.model_validate_json(body)) for key, body in rows]

    def mark_published(self, keys: Sequence[str]) -> None:
        """Note that these notifications are on the alerts topic (the audit trail)."""
        with self._guard() as conn, conn:
            conn.executemany(
                "UPDATE outbox SET published = 1 WHERE key = ? AND published = 0",
                [(key,) for key in keys],
            )

    def due(self, now: datetime, limit: int = 100) -> list[Pending]:
        """Return pending notifications whose next attempt time has come, oldest first."""
        rows = self._select(
            "SELECT key, channel, alert, attempts, created FROM outbox"
            " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, created LIMIT ?",
            (micros(now), limit),
        )
        return [_pending(*row) for row in rows]

    def late(self, now: datetime, after: float) -> list[Pending]:
        """Mark and return pending notifications older than ``after`` seconds not yet marked.

        Each is returned once, so that its lateness is reported (and escalated) once.
        """
        cutoff = micros(now - timedelta(seconds=after))
        with self._guard() as conn, conn:
            rows = conn.execute(
                "SELECT key, channel, alert, attempts, created FROM outbox WHERE status ="
                " 'pending' AND late_at IS NULL AND created <= ? ORDER BY created LIMIT 100",
                (cutoff,),
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET late_at = ? WHERE key = ? AND channel = ?",
                [(micros(now), key, channel) for key, channel, *_ in rows],
            )
        return [_pending(*row) for row in rows]

    def reroute(self, pending: Pending, channel: str) -> bool:
        """Add a copy of a notification for another channel (a fallback); False if it has one."""
        now = micros(self._clock())
        with self._guard() as conn, conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox (key, channel, alert_id, state, alert, created,"
                " next_at, published) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                (pending.key, channel, pending.alert.alert_id, pending.alert.state,
                 pending.alert.model_dump_json(), now, now),
            )  # fmt: skip
        return cursor.rowcount > 0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Return the wait in seconds after ``attempts`` failed attempts (full jitter), never
        shorter than a receiver's ``retry_after``."""
        return self._backoff.delay(attempts, retry_after)

    def record(self, pending: Pending, delivery: Delivery, now: datetime) -> Status:
        """Store an attempt; mark delivered, or schedule the next try, or give up.

        A failing notification is tried again until it is ``give_up_after`` old; the last
        try is made at that age.

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
                "SELECT status, attempts, created FROM outbox WHERE key = ? AND channel = ?",
                (pending.key, pending.channel),
            ).fetchone()
            if row is None:
                msg = (
                    f"alert outbox {self.path}: no notification {pending.key} to {pending.channel}"
                )
                raise StateError(msg)
            if row[0] != "pending":
                return cast(Status, row[0])
            attempts = row[1] + 1
            deadline = from_micros(row[2]) + timedelta(seconds=self.give_up_after)
            status: Status
            if delivery.ok:
                status, next_at, done_at = "delivered", None, at
            elif now >= deadline:
                status, next_at, done_at = "failed", None, at
            else:
                # a receiver's Retry-After is a floor: trying earlier only meets another 429
                wait = timedelta(seconds=self.delay(attempts, delivery.retry_after))
                status, next_at, done_at = "pending", micros(min(now + wait, deadline)), None
            conn.execute(
                "UPDATE outbox SET status = ?, attempts = ?, next_at = COALESCE(?, next_at),"
                " done_at = ? WHERE key = ? AND channel = ?",
                (status, attempts, next_at, done_at, pending.key, pending.channel),
            )
        return status
