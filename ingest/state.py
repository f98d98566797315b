"""What ingest remembers between runs, in one small SQLite file.

Three tables: the HTTP validators of each URL (it is an `ingest.http.ValidatorStore`), the
document ids each source has already published, and a short log of runs per source.
Times are stored as integer microseconds since the epoch (UTC), so they round-trip exactly
and compare as numbers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from infra.errors import StateError
from infra.sqlite import LockedSqlite, from_micros, micros, run_script

SCHEMA_VERSION = 1
RUNS_KEPT = 50
# Well below SQLite's limit on bound parameters of one statement (999 before 3.32).
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (source, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    started INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, id);
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One run of one source, as `IngestState.record_run` stored it."""

    source: str
    started: datetime
    finished: datetime
    documents: int
    rejected: int
    error: str | None


class IngestState(LockedSqlite):
    """The persistent ingest state in one SQLite file; safe to share between threads.

    One connection guarded by a lock: the writes are tiny, so serialising them costs less
    than a connection per scheduler thread.

    Args:
        path: the database file; it and its folder are created when missing.

    Raises:
        StateError: the file cannot be opened, is not a SQLite database, is corrupt, or
            was written by a newer surveil. It is never recreated behind your back.
    """

    _label = "ingest state"
    _error = StateError

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # NORMAL is safe from corruption in WAL mode; a power cut may lose the last commits,
        # which costs at most a re-fetch whose duplicates downstream drops.
        self._connect(SCHEMA_VERSION, "NORMAL", _create)

    # -- validators ------------------------------------------------------------------------

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """Return the stored ``(etag, last_modified)`` of ``url``, None where unknown."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT etag, last_modified FROM validators WHERE url = ?", (url,)
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Store the validators of ``url``; both None forgets them."""
        with self._guard() as conn, conn:
            if etag is None and last_modified is None:
                conn.execute("DELETE FROM validators WHERE url = ?", (url,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO validators (url, etag, last_modified) VALUES (?, ?, ?)",
                    (url, etag, last_modified),
                )

    # -- seen document ids -----------------------------------------------------------------

    def unseen(self, source: str, doc_ids: Sequence[str]) -> list[str]:
        """Return the ids not yet marked seen for ``source``, once each, in input order."""
        wanted = list(dict.fromkeys(doc_ids))
        seen: set[str] = set()
        with self._guard() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT doc_id FROM seen WHERE source = ? AND doc_id IN ({marks})",  # noqa: S608 - only placeholders are formatted in
                    (source, *chunk),
                )
                seen.update(row[0] for row in rows)
        return [doc_id for doc_id in wanted if doc_id not in seen]

    def mark_seen(self, source: str, doc_ids: Sequence[str], at: datetime) -> None:
        """Record ``doc_ids`` as seen for ``source`` at ``at``, in one transaction.

        Ids seen before get the later time, so marking every id of a fetch keeps the ids a
        feed still lists from being pruned and published again.

        Raises:
            ValueError: ``at`` is naive.
        """
        stamp = micros(at)
        with self._guard() as conn, conn:
            conn.executemany(
                "INSERT INTO seen (source, doc_id, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (source, doc_id) DO UPDATE "
                "SET seen_at = max(seen_at, excluded.seen_at)",
                [(source, doc_id, stamp) for doc_id in doc_ids],
            )

    def prune(self, older_than: datetime) -> int:
        """Forget the ids last seen before ``older_than``; return how many were dropped.

        Raises:
            ValueError: ``older_than`` is naive.
        """
        stamp = micros(older_than)
        with self._guard() as conn, conn:
            return conn.execute("DELETE FROM seen WHERE seen_at < ?", (stamp,)).rowcount

    def seen_counts(self) -> dict[str, int]:
        """Return how many ids are remembered per source."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT source, count(*) FROM seen GROUP BY source ORDER BY source"
            ).fetchall()
        return {source: count for source, count in rows}

    # -- run log ---------------------------------------------------------------------------

    def record_run(
        self,
        source: str,
        started: datetime,
        finished: datetime,
        documents: int,
        rejected: int,
        error: str | None,
    ) -> None:
        """Log one run of ``source``, keeping the last `RUNS_KEPT` runs of each source.

        Raises:
            ValueError: ``started`` or ``finished`` is naive.
        """
        row = (source, micros(started), micros(finished), documents, rejected, error)
        with self._guard() as conn, conn:
            conn.execute(
                "INSERT INTO runs (source, started, finished, documents, rejected, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            conn.execute(
                "DELETE FROM runs WHERE source = ? AND id NOT IN "
                "(SELECT id FROM runs WHERE source = ? ORDER BY id DESC LIMIT ?)",
                (source, source, RUNS_KEPT),
            )

    def last_runs(self) -> list[Run]:
        """Return the latest run of each source, by source name."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT source, started, finished, documents, rejected, error FROM runs "
                "WHERE id IN (SELECT max(id) FROM runs GROUP BY source) ORDER BY source"
            ).fetchall()
        return [
            Run(source, from_micros(started), from_micros(finished), documents, rejected, error)
            for source, started, finished, documents, rejected, error in rows
        ]


def _create(conn: sqlite3.Connection, found: int) -> None:
    """Create what is missing; version 1 is the only one so far, so nothing migrates."""
    run_script(conn, _SCHEMA)
