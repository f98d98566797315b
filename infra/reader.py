"""The read path for quants: read-only, limited queries on a connection of their own.

`ReadOnlyReader` has its own connection (with chDB, its own session on the folder the
warehouse has open), read-only and limited per query, so that no query can block, slow or
change the writers. `read_statement` refuses anything but one read statement before it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from infra.db import Parameters, Table, connect, database_name
from infra.errors import StoreError

READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
READ_ONLY_REFUSAL = "queries here are read-only"
_NOT_STREAMABLE = "Streaming query is not supported"
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z_]+)")
_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")
_ERROR_CODE = re.compile(r"Code: (\d+)")
_TIMEOUT_EXCEEDED, _TOO_MANY_ROWS, _MEMORY_LIMIT_EXCEEDED, _READONLY = 159, 396, 241, 164


def read_statement(sql: str) -> str:
    """Return one read statement without its comments, or refuse it.

    Comments (``--``, ``#``, ``/* */``, nested too) are dropped and literals masked before
    the statement's kind is read, so neither can hide a keyword; the SQL that runs is the
    comment-free text that was checked. Kinds allowed: SELECT, WITH, SHOW, DESCRIBE (DESC)
    and EXPLAIN.

    Raises:
        StoreError: another kind of statement (INSERT, KILL, BACKUP ...), more than one
            statement, INTO OUTFILE (chDB writes the file in process), or an unterminated
            comment or literal.
    """
    clean, masked = _strip_comments(sql)
    masked = masked.rstrip().rstrip(";").rstrip()
    if ";" in masked:
        msg = f"{READ_ONLY_REFUSAL}: send one statement at a time"
        raise StoreError(msg)
    match = _FIRST_WORD.match(masked)
    kind = match.group(1).upper() if match else ""
    if kind not in READ_STATEMENTS:
        allowed = ", ".join(READ_STATEMENTS)
        msg = f"{READ_ONLY_REFUSAL}: {kind or 'an empty statement'} is not one of {allowed}"
        raise StoreError(msg)
    if _OUTFILE.search(masked):
        msg = f"{READ_ONLY_REFUSAL}: INTO OUTFILE would write a file"
        raise StoreError(msg)
    return clean.strip()


def _strip_comments(sql: str) -> tuple[str, str]:
    """Return the SQL without comments, and the same with every literal blanked."""
    clean: list[str] = []
    masked: list[str] = []
    i, end = 0, len(sql)
    while i < end:
        char, pair = sql[i], sql[i : i + 2]
        if pair == "--" or char == "#":
            # '#' opens a comment only before ' ' or '!' in ClickHouse: treating every '#' as
            # one can hide nothing, since a stray '#' is a syntax error there anyway.
            newline = sql.find("\n", i)
            i = end if newline < 0 else newline
            clean.append(" ")
            masked.append(" ")
        elif pair == "/*":
            i = _block_comment_end(sql, i)
            clean.append(" ")
            masked.append(" ")
        elif char in "'\"`":
            stop = _quoted_end(sql, i, char)
            clean.append(sql[i:stop])
            masked.append(char + " " * (stop - i - 2) + char)
            i = stop
        elif heredoc := _HEREDOC.match(sql, i):
            closing = sql.find(heredoc.group(0), heredoc.end())
            if closing < 0:
                msg = f"{READ_ONLY_REFUSAL}: an unterminated {heredoc.group(0)} string"
                raise StoreError(msg)
            stop = closing + len(heredoc.group(0))
            clean.append(sql[i:stop])
            masked.append("''")
            i = stop
        else:
            clean.append(char)
            masked.append(char)
            i += 1
    return "".join(clean), "".join(masked)


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        pair = sql[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    msg = f"{READ_ONLY_REFUSAL}: an unterminated /* comment"
    raise StoreError(msg)


def _quoted_end(sql: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if sql[i + 1 : i + 2] != quote:  # a doubled quote stands for itself
                return i + 1
            i += 2
        else:
            i += 1
    msg = f"{READ_ONLY_REFUSAL}: an unterminated {quote} literal"
    raise StoreError(msg)


@dataclass(frozen=True)
class QueryLimits:
    """What one read may take: seconds, bytes of memory, rows of its result."""

    seconds: float = 120.0
    memory_bytes: int = 4 << 30
    rows: int = 1_000_000

    def settings(self) -> dict[str, Any]:
        """Return the ClickHouse settings of a reader, in the order they must be applied.

        ``readonly=1`` comes last: from then on ClickHouse refuses every write and every
        change of a setting, a statement's own SETTINGS clause included.
        """
        return {
            "max_execution_time": self.seconds,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.memory_bytes,
            "max_result_rows": self.rows,
            "result_overflow_mode": "throw",
            "readonly": 1,
        }


@dataclass(frozen=True)
class Result:
    """One query's result: column names, ClickHouse type names and rows."""

    columns: list[str]
    types: list[str]
    rows: list[Any]


class ReadOnlyReader:
    """Read-only queries on a connection of their own, never the writers'.

    With chDB the reader opens its own session on the folder (one process may hold several);
    its limits and ``readonly=1`` are set once on that session, which then refuses any
    change, so nothing a query sends can outlive it or reach the warehouse's session. With a
    server it is a separate client whose every request carries the same settings.

    Args:
        dsn: the data, as for `connect`.
        database: what ``{db}`` in the SQL names.
        limits: the time, memory and result rows one query may take.
    """

    def __init__(self, dsn: str, database: str, limits: QueryLimits | None = None) -> None:
        self.limits = limits or QueryLimits()
        self.database = database_name(database)
        self.client = connect(dsn, settings=self.limits.settings())

    def run(self, sql: str, parameters: Parameters = None) -> Result:
        """Run one read statement within the limits. Blocks: call it off the event loop.

        Raises:
            StoreError: refused (not a read, over a limit) or failed, with the reason.
        """
        sql = read_statement(sql).replace("{db}", self.database)
        try:
            try:
                return self._streamed(sql, parameters)
            except ClickHouseError as exc:
                if _NOT_STREAMABLE not in str(exc):
                    raise
            # chDB streams no SHOW, DESCRIBE or EXPLAIN: those run whole.
            result = self.client.query(sql, parameters=parameters)
            rows = list(result.result_rows)
            self._cap(len(rows))
            return Result(list(result.column_names), [t.name for t in result.column_types], rows)
        except ClickHouseError as exc:
            raise self._refusal(exc) from exc

    def query(self, sql: str, parameters: Parameters = None, settings: Parameters = None) -> Table:
        """Run a read; return its column names and rows (the `Reader` of surveil.quant).

        ``settings`` are ignored: the reader's own limits and ``readonly=1`` hold.
        """
        result = self.run(sql, parameters)
        return result.columns, [tuple(row) for row in result.rows]

    def _streamed(self, sql: str, parameters: Parameters) -> Result:
        rows: list[Any] = []
        with self.client.query_row_block_stream(sql, parameters=parameters) as stream:
            columns = list(stream.source.column_names)
            types = [t.name for t in stream.source.column_types]
            for block in stream:
                rows.extend(block)
                self._cap(len(rows))  # leaving the stream early stops the query
        return Result(columns, types, rows)

    def _cap(self, rows: int) -> None:
        if rows > self.limits.rows:
            raise StoreError(self._too_many_rows())

    def _too_many_rows(self) -> str:
        return f"the result has more than {self.limits.rows:,} rows: aggregate, or add a LIMIT"

    def _refusal(self, exc: ClickHouseError) -> StoreError:
        """Return the StoreError that says why ClickHouse refused a query, in plain words."""
        code = getattr(exc, "code", None)
        if code is None and (match := _ERROR_CODE.search(str(exc))):
            code = int(match.group(1))
        if code == _TIMEOUT_EXCEEDED:
            reason = (
                f"the query ran over its time limit of {self.limits.seconds:g} s: "
                "narrow its range or aggregate"
            )
        elif code == _MEMORY_LIMIT_EXCEEDED:
            reason = (
                f"the query needed more than its memory limit of "
                f"{self.limits.memory_bytes / (1 << 20):,.0f} MiB: narrow its range or aggregate"
            )
        elif code == _TOO_MANY_ROWS:
            reason = self._too_many_rows()
        elif code == _READONLY:
            reason = READ_ONLY_REFUSAL
        else:
            return StoreError(f"query failed: {exc}")
        return StoreError(f"{reason} ({exc})")

    def close(self) -> None:
        """Close the reader's connection (its chDB session; the folder stays the writer's)."""
        self.client.close()
