"""The read path on real chDB: one read statement at a time, on a session of its own beside
the writer's, within limits of time, memory and rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.db import Warehouse, connect
from infra.errors import StoreError
from infra.reader import QueryLimits, ReadOnlyReader, read_statement

# Nine seconds of sleep(3) in a row (distinct scalar subqueries run one after the other; equal
# ones would run once): long enough for a write to finish meanwhile, and no CPU taken.
HEAVY = "SELECT 'heavy read', sleep(3) + (SELECT sleep(3) + 1) + (SELECT sleep(3) + 2) AS s"
MIGRATION = ["version", "name", "checksum"]


@dataclass
class Folder:
    """One chDB folder with the writer's warehouse and a reader on it, in this process."""

    dsn: str
    warehouse: Warehouse
    reader: ReadOnlyReader


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Folder]:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    warehouse = Warehouse(connect(dsn), "surveil")
    warehouse.migrate()
    reader = ReadOnlyReader(dsn, "surveil", QueryLimits(seconds=60))
    try:
        yield Folder(dsn, warehouse, reader)
    finally:
        reader.close()
        warehouse.close()


def _migrations(warehouse: Warehouse, version: int) -> list[tuple[object, ...]]:
    return warehouse.rows(
        "SELECT count() FROM {db}.schema_migrations WHERE version = {v:UInt32}", {"v": version}
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select 1;",
        "WITH 2 AS x SELECT x",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SHOW TABLES FROM {db}",
        "DESCRIBE TABLE {db}.scores",
        "DESC {db}.scores",
        "EXPLAIN SELECT 1",
        "-- a comment\nSELECT 1",
        "# a comment\nSELECT 1",
        "/* a /* nested */ comment */ SELECT 1",
        "SELECT ';' AS semicolon, '-- not a comment' AS text, $$ KILL; $$ AS heredoc",
    ],
)
def test_reads_pass(sql: str) -> None:
    assert read_statement(sql).split()[0].upper().lstrip("(") in {"SELECT", "WITH", "SHOW"} | {
        "DESCRIBE",
        "DESC",
        "EXPLAIN",
    }


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("INSERT INTO {db}.documents (doc_id) VALUES (1)", "INSERT is not one of"),
        ("KILL QUERY WHERE 1", "KILL is not one of"),
        ("-- comment\nKILL QUERY WHERE 1", "KILL is not one of"),
        ("# comment\nKILL QUERY WHERE 1", "KILL is not one of"),
        ("/* comment */ KILL QUERY WHERE 1", "KILL is not one of"),
        ("/* a /* nested */ comment */ KILL QUERY WHERE 1", "KILL is not one of"),
        ("BACKUP TABLE {db}.scores TO Disk('default', 'scores.zip')", "BACKUP is not one of"),
        ("SYSTEM STOP MERGES", "SYSTEM is not one of"),
        ("SET readonly = 0", "SET is not one of"),
        ("SELECT 1; DROP TABLE {db}.scores", "send one statement at a time"),
        ("SELECT 1 -- c\n; KILL QUERY WHERE 1", "send one statement at a time"),
        ("SELECT * FROM {db}.scores INTO OUTFILE '/tmp/scores.csv'", "INTO OUTFILE"),
        ("SELECT 1 /* KILL", "an unterminated /\\* comment"),
        ("SELECT 'KILL", "an unterminated ' literal"),
        ("-- only a comment", "an empty statement"),
    ],
)
def test_anything_but_one_read_is_refused(sql: str, why: str) -> None:
    with pytest.raises(StoreError, match=f"read-only: {why}"):
        read_statement(sql)


def test_comments_do_not_reach_clickhouse_and_literals_stay() -> None:
    assert read_statement("-- x\nSELECT '--', 1 /* y */ + 2 # z") == "SELECT '--', 1   + 2"


def test_a_refused_write_leaves_the_writer_writing(folder: Folder) -> None:
    refused = [
        "INSERT INTO {db}.schema_migrations (version) VALUES (1)",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 0",
    ]
    for sql in refused:
        with pytest.raises(StoreError, match="read-only"):
            folder.reader.run(sql)
    # What the reader's session refused did not reach the writer's, nor stayed on its own.
    assert folder.warehouse.rows("SELECT getSetting('readonly')") == [(0,)]
    assert folder.warehouse.insert("schema_migrations", [[901, "x", "y"]], MIGRATION) == 1
    assert _migrations(folder.warehouse, 901) == [(1,)]
    assert folder.reader.run("SELECT getSetting('readonly')").rows == [(1,)]
    assert folder.reader.run(
        "SELECT count() FROM {db}.schema_migrations WHERE version = 901"
    ).rows == [(1,)]


def test_a_heavy_read_does_not_hold_up_a_write(folder: Folder) -> None:
    with ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(folder.reader.run, HEAVY)
        _wait_until_running(folder.warehouse, "heavy read")  # the writer's session answers
        folder.warehouse.insert("schema_migrations", [[902, "x", "y"]], MIGRATION)
        written_while_reading = not heavy.done()
        stored = _migrations(folder.warehouse, 902)
        assert heavy.result().rows == [("heavy read", 3)]
    assert written_while_reading and stored == [(1,)]


def _wait_until_running(warehouse: Warehouse, marker: str) -> None:
    sql = (
        "SELECT count() FROM system.processes WHERE query LIKE {m:String} "
        "AND query NOT LIKE '%system.processes%'"
    )
    for _ in range(200):
        if warehouse.rows(sql, {"m": f"%{marker}%"}) == [(1,)]:
            return
        time.sleep(0.05)
    pytest.fail(f"the query {marker!r} never showed in system.processes")


def test_limits_refuse_a_query_with_the_reason(folder: Folder) -> None:
    tight = ReadOnlyReader(
        folder.dsn, "surveil", QueryLimits(seconds=1, memory_bytes=32 << 20, rows=10)
    )
    try:
        assert len(tight.run("SELECT number FROM numbers(10)").rows) == 10
        with pytest.raises(StoreError, match="more than 10 rows: aggregate, or add a LIMIT"):
            tight.run("SELECT number FROM numbers(11)")
        with pytest.raises(StoreError, match="more than its memory limit of 32 MiB"):
            tight.run("SELECT length(groupArray(number)) FROM numbers(100000000)")
        with pytest.raises(StoreError, match="ran over its time limit of 1 s"):
            tight.run("SELECT sleep(2)")
        assert tight.run("SELECT 1").rows == [(1,)]  # the session still serves
    finally:
        tight.close()


def test_show_and_describe_run_whole(folder: Folder) -> None:
    assert ("scores",) in folder.reader.run("SHOW TABLES FROM {db}").rows
    described = folder.reader.run("DESCRIBE TABLE {db}.scores")
    assert described.rows[0][:2] == ("doc_id", "String")
    columns, rows = folder.reader.query("SELECT {x:String} AS x", {"x": "bound"})
    assert (columns, rows) == (["x"], [("bound",)])
