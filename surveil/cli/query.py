"""`surveil query`: sentiment series, documents, alerts and raw read-only SQL.

Everything goes through `surveil.quant.connect`, so the CLI reads the data the way a quant's
notebook does. Times on the command line are ISO dates or datetimes; naive ones are UTC.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pandas as pd

from infra.errors import SurveilError
from surveil.cli.base import Group, SettingsContext, pass_settings
from surveil.cli.console import err, warn
from surveil.cli.export import check_out, emit
from surveil.cli.options import (
    TIME_HELP,
    as_of_option,
    freq_option,
    output_options,
    run_option,
    span,
    time_range,
    window_options,
)
from surveil.quant import Quant, connect

# Columns the table format shows (csv, json and parquet carry every column).
DOCUMENT_TABLE = ["published_at", "ticker", "source", "label", "score", "relevance", "title"]
ALERT_TABLE = [
    "fired_at",
    "ticker",
    "rule",
    "severity",
    "state",
    "value",
    "threshold",
    "window_end",
]

# What clickhouse-connect appends to every query; an error message quoting it shows text
# the user never wrote (chDB: "... (in query: SELECT 1\n FORMAT Native)").
_INJECTED = re.compile(r"\s*\bFORMAT\s+(?:AS\s+)?Native\b")
_IN_QUERY = re.compile(r":?\s*\(in query: .*?\)(?=[).]*$|\. )", re.DOTALL)
# Where an incomplete query runs into that FORMAT, ClickHouse blames it, past the user's text.
_AT_FORMAT = re.compile(
    r"(?:failed at position \d+ \(FORMAT\) \(line \d+, col \d+\):?|"
    r"Unknown expression or function identifier `FORMAT`)\.?"
)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.IGNORECASE)

# What a query command's fetch returns: the frame, the message for no rows, the table columns.
Answer = tuple[pd.DataFrame, str, Sequence[str] | None]


@contextmanager
def open_quant(ctx: SettingsContext, sql: str = "", run: str | None = None) -> Iterator[Quant]:
    """Open `surveil.quant` on the CLI's settings, close it after.

    Args:
        sql: the user's own SQL, if any, so that an error keeps what they wrote.
        run: a replay run's id, to read its database instead of the live one.

    Raises:
        SurveilError: the query failed, said without the text the client added to it.
    """
    try:
        with connect(ctx.settings(), run=run) as quant:
            yield quant
    except SurveilError as exc:
        if "UNKNOWN_DATABASE" in str(exc):
            err.print("hint: no surveil database there yet; run `surveil migrate` first")
        raise SurveilError(user_text(str(exc), sql)) from exc


def user_text(message: str, sql: str = "") -> str:
    """Return a ClickHouse error message without the text the client added to the query.

    Args:
        sql: what the user wrote; text it contains is kept.
    """
    message = _IN_QUERY.sub("", message)  # the user knows their query
    if re.search(r"\bFORMAT\b", sql, re.IGNORECASE):
        return message
    return _AT_FORMAT.sub("the query ends too early.", _INJECTED.sub("", message))


def warn_unknown(quant: Quant, tickers: Sequence[str], found: Sequence[str]) -> None:
    """Warn about each ticker without rows that the data does not know, with a suggestion."""
    missing = [t for t in tickers if t not in set(found)]
    if not missing:
        return
    frame = quant.sql("SELECT DISTINCT ticker FROM {db}.scores")
    known = [str(t) for t in frame["ticker"]] if len(frame) else []
    for ticker in missing:
        if ticker in known:
            continue  # known, just quiet in this range
        close = difflib.get_close_matches(ticker, known, n=3)
        guess = f"; did you mean {' or '.join(close)}?" if close else ""
        warn(f"{ticker} is not a ticker in the data{guess}")


class QueryGroup(Group):
    """A group whose first argument, when it names no subcommand, is SQL for `sql`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Return the named subcommand, or the hidden `sql` one with every argument."""
        if self.get_command(ctx, args[0]) is not None:
            return super().resolve_command(ctx, args)
        if re.fullmatch(r"[A-Za-z][\w-]*", args[0]):
            # One bare word is no SQL statement: most likely a mistyped subcommand.
            ctx.fail(f'No such command {args[0]!r}; quote SQL, e.g. "SELECT 1".')
        return "sql", self.get_command(ctx, "sql"), args


@click.group(
    "query",
    cls=QueryGroup,
    context_settings={"ignore_unknown_options": True},
)
def query_group() -> None:
    """Query the data: sentiment series, documents, alerts, or raw read-only SQL.

    \b
    surveil query "SELECT count() FROM {db}.scores" [--format table|csv|json]
    surveil query sentiment AAPL MSFT --from 2026-03-02 --freq 5m --format csv
    """


@query_group.command("sql", hidden=True)
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@run_option
@pass_settings
def query_sql(ctx: SettingsContext, sql: str, fmt: str, run: str | None) -> None:
    """Run read-only SQL ({db} names surveil's database) and print the result."""
    if _FORMAT_CLAUSE.search(sql):
        # Ours would follow it: ClickHouse then reports a syntax error past the user's text.
        msg = "leave out the FORMAT clause: choose the output with --format table|csv|json"
        raise click.UsageError(msg)
    with open_quant(ctx, sql, run) as quant:
        frame = quant.sql(sql)
    emit(frame, fmt, None, "the query returned no rows")


def frame_query(fetch: Callable[..., Answer]) -> Callable[..., None]:
    """Make a query command of ``fetch(quant, start, end, **its own parameters)``.

    The command takes --format, --out and --run after the options of ``fetch``, resolves the
    time range, opens the data and prints the frame ``fetch`` returns with its message for no
    rows and its table columns.
    """

    def command(
        ctx: SettingsContext,
        /,
        start: datetime | None,
        end: datetime | None,
        fmt: str,
        out: Path | None,
        run: str | None,
        **params: Any,
    ) -> None:
        check_out(fmt, out)
        start, end = time_range(start, end)
        with open_quant(ctx, run=run) as quant:
            frame, empty, columns = fetch(quant, start, end, **params)
        emit(frame, fmt, out, empty, columns)

    command.__doc__ = fetch.__doc__  # the command's help
    return output_options(run_option(pass_settings(command)))


@query_group.command("sentiment", epilog=TIME_HELP)
@click.argument("tickers", nargs=-1, required=True)
@window_options
@freq_option("Bucket width in minutes, hours or days: 1min, 5m, 15min, 1h, 1d.")
@as_of_option
@frame_query
def query_sentiment(
    quant: Quant,
    start: datetime,
    end: datetime,
    tickers: Sequence[str],
    freq: str,
    as_of: datetime | None,
) -> Answer:
    """Print tickers' sentiment per time bucket.

    Columns: ticker, bucket (its start), documents, mean_score, negative_share and
    weighted_score (the mean weighted by each ticker's relevance to its document).
    """
    names = [t.upper() for t in tickers]
    frame = quant.sentiment(names, start, end, freq=freq, as_of=as_of)
    warn_unknown(quant, names, list(frame["ticker"]) if len(frame) else [])
    return frame, f"no documents for {', '.join(names)} {span(start, end)}", None


@query_group.command("documents", epilog=TIME_HELP)
@click.argument("ticker")
@window_options
@as_of_option
@frame_query
def query_documents(
    quant: Quant, start: datetime, end: datetime, ticker: str, as_of: datetime | None
) -> Answer:
    """Print a ticker's scored documents in a range, oldest first."""
    name = ticker.upper()
    frame = quant.documents(name, start, end, as_of=as_of)
    warn_unknown(quant, [name], [name] if len(frame) else [])
    return frame, f"no documents for {name} {span(start, end)}", DOCUMENT_TABLE


@query_group.command("alerts", epilog=TIME_HELP)
@click.option("--ticker", "tickers", multiple=True, help="Only this ticker (repeatable).")
@click.option(
    "--state", type=click.Choice(["firing", "resolved"]), default=None, help="Only this state."
)
@window_options
@frame_query
def query_alerts(
    quant: Quant, start: datetime, end: datetime, tickers: Sequence[str], state: str | None
) -> Answer:
    """Print the alert states (firing, resolved) fired in a range."""
    names = [t.upper() for t in tickers] or None
    frame = quant.alerts(start, end, tickers=names, state=state)
    return frame, f"no alerts {span(start, end)}", ALERT_TABLE
