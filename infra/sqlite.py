"""What the SQLite files of surveil share: one connection behind a lock, errors that name
the file, and closing (also as a context manager)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from infra.errors import SurveilError


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
