"""What the SQLite files of surveil share: opening and checking the file, one connection
behind a lock, errors that name the file, and closing (also as a context manager)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from infra.closing import Closing
from infra.errors import SurveilError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Store an aware datetime exactly, as integer microseconds since the epoch.

    Raises:
        ValueError: the datetime is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        msg = f"a timezone-aware datetime is required, got {at!r}"
        raise ValueError(msg)
    return (at - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Read back a datetime stored by `micros`, in UTC."""
    return _EPOCH + value * _MICROSECOND


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a script's statements one by one, inside the open transaction.

    ``executescript`` would commit that transaction first.
    """
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        conn.execute(statement)


class LockedSqlite(Closing):
    """Base of a class owning one SQLite connection shared by threads.

    Subclasses set ``_label`` (how errors name the file) and ``_error`` (the SurveilError
    to raise), open the file with `_connect`, and reach the connection only through `_guard`.
    """

    _label: ClassVar[str] = "database"
    _error: ClassVar[type[SurveilError]] = SurveilError
    _conn: sqlite3.Connection

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _connect(
        self,
        version: int,
        synchronous: Literal["NORMAL", "FULL"],
        migrate: Callable[[sqlite3.Connection, int], None],
    ) -> None:
        """Open the file (creating its folder), check every page, then bring its schema up.

        The connection is in WAL mode; it is closed again when anything here fails.

        Args:
            version: the schema version this surveil writes; a newer file is refused.
            synchronous: FULL when a commit must survive a power cut, else NORMAL.
            migrate: ``migrate(conn, found)`` brings a file of version ``found`` (0: a new
                file) up to date, inside the transaction that then sets ``version``.

        Raises:
            _error: the file cannot be opened, is not a SQLite database, is corrupt, or was
                written by a newer surveil; the message names the file.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            msg = f"{self._label} {self.path}: cannot open: {exc}"
            raise self._error(msg) from exc
        try:
            with self._guard() as conn:
                # quick_check reads every page once: a corrupt file found now beats a
                # half-written row found later.
                problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    msg = f"{self._label} {self.path}: corrupt: {'; '.join(problems[:3])}"
                    raise self._error(msg)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                self._migrate(conn, version, migrate)
        except BaseException:
            self._conn.close()
            raise

    def _migrate(
        self,
        conn: sqlite3.Connection,
        version: int,
        migrate: Callable[[sqlite3.Connection, int], None],
    ) -> None:
        # IMMEDIATE: two processes (the CLI and the worker) may open an old file at once;
        # the version is read once this one holds the file.
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                msg = (
                    f"{self._label} {self.path}: schema version {found} is newer than "
                    f"this surveil's ({version})"
                )
                raise self._error(msg)
            migrate(conn, found)
            conn.execute(f"PRAGMA user_version={version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock, and turn SQLite errors into ``_error`` naming the file."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                msg = f"{self._label} {self.path}: {exc}"
                raise self._error(msg) from exc

    def _select(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Return every row a query selects, under the lock."""
        with self._guard() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()
