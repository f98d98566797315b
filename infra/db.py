"""ClickHouse through clickhouse-connect: connect by DSN, migrate, insert and query.

``chdb:///abs/path`` runs the ClickHouse engine in this process (one process may open a
folder at a time); ``http(s)://user:pass@host:8123`` talks to a server. Same SQL for both.

`Warehouse` is the write path; `infra.reader.ReadOnlyReader` is the read path for quants.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from infra.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "clickhouse"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Parameters = dict[str, Any] | None
Table = tuple[list[str], list[tuple[Any, ...]]]


def connect(dsn: str, settings: dict[str, Any] | None = None) -> Client:
    """Open a ClickHouse client for a ``chdb://`` or ``http(s)://`` DSN.

    Args:
        dsn: where the data is.
        settings: ClickHouse settings of the client, applied in order: with chDB once, with
            ``SET`` on the client's own session; with a server, sent with every request.

    Raises:
        ConfigError: the DSN has an unknown scheme.
        StoreError: the engine or server could not be opened.
    """
    if not dsn.startswith(("chdb:", "http://", "https://")):
        msg = f"unsupported ClickHouse DSN {dsn!r}: use chdb:///abs/path or http(s)://host:8123"
        raise ConfigError(msg)
    if dsn.startswith("chdb:"):
        Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn, settings=settings)
    except (ClickHouseError, OSError, RuntimeError) as exc:
        msg = f"cannot open ClickHouse at {redact(dsn)}: {exc}"
        raise StoreError(msg) from exc


def database_name(name: str) -> str:
    """Return ``name`` if it can name a database in SQL unquoted.

    Raises:
        ConfigError: it is not a plain identifier.
    """
    if not _IDENTIFIER.match(name):
        msg = f"database name {name!r} is not a plain identifier"
        raise ConfigError(msg)
    return name


def redact(dsn: str) -> str:
    """Return the DSN with any password replaced by ***."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", dsn)


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of ``infra/clickhouse``."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text, to notice edits of applied migrations."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        """The file's statements with ``{db}`` filled in."""
        text = self.sql.replace("{db}", database)
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations in a folder, ordered by version."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            msg = f"migration file {path.name} is not named NNN_name.sql"
            raise ConfigError(msg)
        found.append(Migration(int(match.group(1)), path.stem, path.read_text("utf-8")))
    return found


class Warehouse:
    """The ClickHouse database of surveil: migrations, inserts and queries.

    Args:
        client: an open clickhouse-connect client.
        database: the database name, created if missing.
    """

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database_name(database)

    def migrate(self, folder: Path = MIGRATIONS_DIR) -> list[str]:
        """Apply the migrations not applied yet; return their names. Safe to repeat."""
        db = self.database
        self.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        self.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
            "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        applied = {
            int(row[0]): str(row[1])
            for row in self.rows("SELECT version, checksum FROM {db}.schema_migrations")
        }
        done = []
        for migration in load_migrations(folder):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    log.warning("migration %s changed after it was applied", migration.name)
                continue
            for statement in migration.statements(db):
                self.command(statement)
            self.insert(
                "schema_migrations",
                [[migration.version, migration.name, migration.checksum]],
                ["version", "name", "checksum"],
            )
            log.info("applied migration %s", migration.name)
            done.append(migration.name)
        return done

    def set_retention(self, days: int) -> None:
        """Keep documents, scores and the rollup for ``days`` after publication (0: forever).

        ClickHouse drops expired rows in the background, at merges.
        """
        tables = (("documents", "published_at"), ("scores", "published_at"))
        for table, column in (
            *tables,
            ("sentiment_1m", "minute"),
            ("sentiment_1m_by_model", "minute"),
        ):
            if days > 0:
                ttl = f"toDateTime({column}) + INTERVAL {int(days)} DAY"
                self.command(f"ALTER TABLE {{db}}.{table} MODIFY TTL {ttl}")
            elif self._has_ttl(table):
                self.command(f"ALTER TABLE {{db}}.{table} REMOVE TTL")

    def _has_ttl(self, table: str) -> bool:
        rows = self.rows(
            "SELECT create_table_query FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            {"d": self.database, "t": table},
        )
        return bool(rows) and " TTL " in str(rows[0][0])

    def command(self, sql: str, parameters: Parameters = None) -> None:
        """Run a statement that returns no rows. ``{db}`` names this database."""
        sql = sql.replace("{db}", self.database)
        try:
            self.client.command(sql, parameters=parameters)
        except ClickHouseError as exc:
            msg = f"ClickHouse refused {sql[:80]!r}: {exc}"
            raise StoreError(msg) from exc

    def query(self, sql: str, parameters: Parameters = None, settings: Parameters = None) -> Table:
        """Run a query; return its column names and rows. ``{db}`` names this database."""
        sql = sql.replace("{db}", self.database)
        try:
            result = self.client.query(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            msg = f"query failed: {exc}"
            raise StoreError(msg) from exc
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def rows(self, sql: str, parameters: Parameters = None) -> list[tuple[Any, ...]]:
        """Run a query; return its rows."""
        return self.query(sql, parameters)[1]

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        token: str | None = None,
    ) -> int:
        """Insert rows into a table of this database; return how many were sent.

        Args:
            token: the insert's ``insert_deduplication_token``: a table with a deduplication
                window drops a later insert with the same token (``streams.ledger``).
        """
        return self._insert(table, rows, columns, token)

    def insert_arrow(self, table: str, data: pa.Table, token: str | None = None) -> int:
        """Like `insert`, with the data as an Arrow table (named as the table's columns): the
        engine reads it in one piece, with no per-value encoding in Python."""
        return self._insert(table, data, data.column_names, token)

    def _insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]] | pa.Table,
        columns: Sequence[str],
        token: str | None,
    ) -> int:
        """The one place every insert goes through (rows or an Arrow table)."""
        count = data.num_rows if isinstance(data, pa.Table) else len(data)
        if not count:
            return 0
        settings = {"insert_deduplication_token": token} if token else None
        try:
            if isinstance(data, pa.Table):
                self.client.insert_arrow(table, data, database=self.database, settings=settings)
            else:
                self.client.insert(
                    table,
                    data,
                    column_names=list(columns),
                    database=self.database,
                    settings=settings,
                )
        except ClickHouseError as exc:
            msg = f"insert into {table} failed: {exc}"
            raise StoreError(msg) from exc
        return int(count)

    def close(self) -> None:
        """Close the client (and release a chDB folder)."""
        self.client.close()
