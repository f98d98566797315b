"""What the SQLite files of surveil share: one connection behind a lock, errors that name
the file, and closing (also as a context manager)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

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


class LockedSqlite:
    """Base of a class owning one SQLite connection shared by threads.

    Subclasses set ``_label`` (how errors name the file) and ``_error`` (the SurveilError
    to raise), assign ``self._conn`` when they open the file, and reach the connection only
    through `_guard`.
    """

    _label: ClassVar[str] = "database"
    _error: ClassVar[type[SurveilError]] = SurveilError
    _conn: sqlite3.Connection

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock, and turn SQLite errors into ``_error`` naming the file."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                msg = f"{self._label} {self.path}: {exc}"
                raise self._error(msg) from exc

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
