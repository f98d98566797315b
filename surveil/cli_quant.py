"""`surveil query` and `surveil plot`: sentiment series, documents, alerts and raw SQL.

Everything goes through `surveil.api.connect`, so the CLI reads the data the way a quant's
notebook does. Times on the command line are ISO dates or datetimes; naive ones are UTC.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from infra.errors import SurveilError

if TYPE_CHECKING:
    import pandas as pd

    from surveil.api import Quant

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err_console = Console(stderr=True)

TIME_HELP = (
    "TS is an ISO date or datetime: 2026-03-02, 2026-03-02T13:00, 2026-03-02T13:00:00Z or "
    "2026-03-02T15:00+02:00. Naive times are UTC; --from is inclusive, --to exclusive."
)
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


def _fail(exc: SurveilError) -> None:
    err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    sys.exit(1)


class UtcTime(click.ParamType):
    """An ISO date or datetime on the command line, as an aware UTC datetime."""

    name = "TS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ISO 8601; a naive value is taken as UTC, an offset is converted to UTC."""
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip())
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO date or datetime (e.g. 2026-03-02T13:00)", param, ctx
                )
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


TS = UtcTime()


def _freq(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from infra.quant import parse_freq  # noqa: PLC0415 - pandas is slow to import

    try:
        return parse_freq(value).name
    except SurveilError as exc:
        raise click.BadParameter(str(exc)) from exc


def _default_freq() -> str:
    from infra.quant import DEFAULT_FREQ  # noqa: PLC0415 - pandas is slow to import

    return DEFAULT_FREQ


def _run(command: F) -> F:
    """Add --run: read a replay run's database instead of the live one."""
    return click.option(
        "--run",
        "run",
        default=None,
        metavar="ID",
        help="Read this replay run's results (`surveil runs list`) instead of the live data.",
    )(command)


def _window(command: F) -> F:
    """Add --from and --to (default: the 24 hours up to now)."""
    command = click.option(
        "--to", "end", type=TS, default=None, help="End (UTC if naive) [default: now]."
    )(command)
    return click.option(
        "--from",
        "start",
        type=TS,
        default=None,
        help="Start (UTC if naive) [default: 24h before --to].",
    )(command)


def _output(command: F) -> F:
    """Add --format and --out."""
    command = click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Write to this file instead of stdout (required for parquet).",
    )(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "parquet", "json"]),
        default="table",
        show_default=True,
        help="table shows the main columns; csv, json (one object per line) and parquet all.",
    )(command)


def _as_of(command: F) -> F:
    return click.option(
        "--as-of",
        type=TS,
        default=None,
        help="Point in time: only rows published, scored and ingested by then.",
    )(command)


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    return start or end - timedelta(hours=24), end


@contextmanager
def _quant(ctx: click.Context, sql: str = "", run: str | None = None) -> Iterator[Quant]:
    """Open `surveil.api` on the CLI's settings, close it after; SurveilError exits 1.

    Args:
        sql: the user's own SQL, if any, so that an error keeps what they wrote.
        run: a replay run's id, to read its database instead of the live one.
    """
    from surveil.api import connect  # noqa: PLC0415 - keep --help fast

    try:
        with connect(ctx.obj.settings(), run=run) as quant:
            yield quant
    except SurveilError as exc:
        if "UNKNOWN_DATABASE" in str(exc):
            err_console.print("hint: no surveil database there yet; run `surveil migrate` first")
        _fail(SurveilError(user_text(str(exc), sql)))


def user_text(message: str, sql: str = "") -> str:
    """Return a ClickHouse error message without the text the client added to the query.

    Args:
        sql: what the user wrote; text it contains is kept.
    """
    message = _IN_QUERY.sub("", message)  # the user knows their query
    if re.search(r"\bFORMAT\b", sql, re.IGNORECASE):
        return message
    return _AT_FORMAT.sub("the query ends too early.", _INJECTED.sub("", message))


def _warn_unknown(quant: Quant, tickers: Sequence[str], found: Sequence[str]) -> None:
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
        err_console.print(
            f"warning: {ticker} is not a ticker in the data{guess}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


class QueryGroup(click.Group):
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
@_run
@click.pass_context
def query_sql(ctx: click.Context, sql: str, fmt: str, run: str | None) -> None:
    """Run read-only SQL ({db} names surveil's database) and print the result."""
    if _FORMAT_CLAUSE.search(sql):
        # Ours would follow it: ClickHouse then reports a syntax error past the user's text.
        msg = "leave out the FORMAT clause: choose the output with --format table|csv|json"
        raise click.UsageError(msg)
    with _quant(ctx, sql, run) as quant:
        frame = quant.sql(sql)
    _emit(frame, fmt, None, "the query returned no rows")


@query_group.command("sentiment", epilog=TIME_HELP)
@click.argument("tickers", nargs=-1, required=True)
@_window
@click.option(
    "--freq",
    default=_default_freq,
    show_default="1h",
    callback=_freq,
    metavar="WIDTH",
    help="Bucket width in minutes, hours or days: 1min, 5m, 15min, 1h, 1d.",
)
@_as_of
@_output
@_run
@click.pass_context
def query_sentiment(
    ctx: click.Context,
    tickers: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    freq: str,
    as_of: datetime | None,
    fmt: str,
    out: Path | None,
    run: str | None,
) -> None:
    """Print tickers' sentiment per time bucket.

    Columns: ticker, bucket (its start), documents, mean_score, negative_share and
    weighted_score (the mean weighted by each ticker's relevance to its document).
    """
    _check_out(fmt, out)
    start, end = _range(start, end)
    names = [t.upper() for t in tickers]
    with _quant(ctx, run=run) as quant:
        frame = quant.sentiment(names, start, end, freq=freq, as_of=as_of)
        _warn_unknown(quant, names, list(frame["ticker"]) if len(frame) else [])
    _emit(frame, fmt, out, f"no documents for {', '.join(names)} {_span(start, end)}")


@query_group.command("documents", epilog=TIME_HELP)
@click.argument("ticker")
@_window
@_as_of
@_output
@_run
@click.pass_context
def query_documents(
    ctx: click.Context,
    ticker: str,
    start: datetime | None,
    end: datetime | None,
    as_of: datetime | None,
    fmt: str,
    out: Path | None,
    run: str | None,
) -> None:
    """Print a ticker's scored documents in a range, oldest first."""
    _check_out(fmt, out)
    start, end = _range(start, end)
    with _quant(ctx, run=run) as quant:
        frame = quant.documents(ticker.upper(), start, end, as_of=as_of)
        _warn_unknown(quant, [ticker.upper()], [ticker.upper()] if len(frame) else [])
    _emit(frame, fmt, out, f"no documents for {ticker.upper()} {_span(start, end)}", DOCUMENT_TABLE)


@query_group.command("alerts", epilog=TIME_HELP)
@click.option("--ticker", "tickers", multiple=True, help="Only this ticker (repeatable).")
@click.option(
    "--state", type=click.Choice(["firing", "resolved"]), default=None, help="Only this state."
)
@_window
@_output
@_run
@click.pass_context
def query_alerts(
    ctx: click.Context,
    tickers: Sequence[str],
    state: str | None,
    start: datetime | None,
    end: datetime | None,
    fmt: str,
    out: Path | None,
    run: str | None,
) -> None:
    """Print the alert states (firing, resolved) fired in a range."""
    _check_out(fmt, out)
    start, end = _range(start, end)
    names = [t.upper() for t in tickers] or None
    with _quant(ctx, run=run) as quant:
        frame = quant.alerts(start, end, tickers=names, state=state)
    _emit(frame, fmt, out, f"no alerts {_span(start, end)}", ALERT_TABLE)


@click.command("plot", epilog=TIME_HELP)
@click.argument("ticker")
@_window
@click.option(
    "--freq",
    default=_default_freq,
    show_default="1h",
    callback=_freq,
    metavar="WIDTH",
    help="Bucket width.",
)
@_as_of
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The PNG file to write.",
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    envvar="SURVEIL_PLOT_TZ",
    show_envvar=True,
    help="Time zone of the time axis (IANA name, e.g. America/New_York).",
)
@_run
@click.pass_context
def plot_command(
    ctx: click.Context,
    ticker: str,
    start: datetime | None,
    end: datetime | None,
    freq: str,
    as_of: datetime | None,
    out: Path,
    tz: str,
    run: str | None,
) -> None:
    """Draw a ticker's sentiment, document counts and alerts over time as a PNG."""
    from surveil.plot import plot_sentiment  # noqa: PLC0415 - matplotlib is slow to import

    start, end = _range(start, end)
    name = ticker.upper()
    with _quant(ctx, run=run) as quant:
        series = quant.sentiment([name], start, end, freq=freq, as_of=as_of)
        # By event time: the alerts of a backfill or replay fired long after their window.
        alerts = quant.alerts(start, end, tickers=[name], by="window_end")
        _warn_unknown(quant, [name], [name] if len(series) else [])
    try:
        plot_sentiment(series, alerts, name, out, start=start, end=end, freq=freq, tz=tz)
    except OSError as exc:
        raise click.FileError(str(out), str(exc)) from exc
    except SurveilError as exc:  # e.g. an unknown time zone
        _fail(exc)
    documents = int(series["documents"].sum()) if len(series) else 0
    click.echo(
        f"wrote {out}: {documents} documents, {len(series)} buckets, {len(alerts)} alert states"
    )


# --- output ---------------------------------------------------------------------------


def _span(start: datetime, end: datetime) -> str:
    return f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def _check_out(fmt: str, out: Path | None) -> None:
    if fmt == "parquet" and out is None:
        msg = "--format parquet needs --out FILE"
        raise click.UsageError(msg)


def _emit(
    frame: pd.DataFrame,
    fmt: str,
    out: Path | None,
    empty: str,
    table_columns: Sequence[str] | None = None,
) -> None:
    """Print a frame (or write it to ``out``); say so on stderr when it has no rows.

    Args:
        empty: the message for no rows.
        table_columns: the columns the table format shows (default: all).
    """
    if frame.empty:
        # A file is still written, with its columns, so a scheduled export never goes missing.
        click.echo(f"no rows: {empty}", err=True)
        if out is None:
            return
    try:
        if fmt == "parquet" and out is not None:
            frame.to_parquet(out, index=False)
        elif out is not None:
            with out.open("w", encoding="utf-8", newline="") as handle:
                _write(frame, fmt, handle, table_columns)
        else:
            _write(frame, fmt, None, table_columns)
    except OSError as exc:
        if out is None and isinstance(exc, BrokenPipeError):
            raise  # the reader left (`| head`): click exits quietly, as Unix tools do
        raise click.FileError(str(out), str(exc)) from exc
    if out is not None:
        click.echo(f"wrote {len(frame)} rows to {out}", err=True)


def _write(frame: pd.DataFrame, fmt: str, handle: Any, table_columns: Sequence[str] | None) -> None:
    import pandas as pd  # noqa: PLC0415

    if fmt == "json":
        for record in frame.to_dict(orient="records"):
            line = json.dumps({str(k): _plain(v) for k, v in record.items()}, ensure_ascii=False)
            click.echo(line, file=handle)
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False, file=handle)
    else:
        columns = [c for c in (table_columns or frame.columns) if c in frame.columns]
        zoned = any(isinstance(frame[c].dtype, pd.DatetimeTZDtype) for c in columns)
        caption = f"{len(frame)} row{'' if len(frame) == 1 else 's'}"
        table = Table(caption=caption + ("; times in UTC" if zoned else ""))
        for column in columns:
            table.add_column(str(column), overflow="fold")
        for row in frame[columns].itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        target = console if handle is None else Console(file=handle)
        if not target.is_terminal:
            # A terminal gets the table fitted to it; a pipe or a file gets it unfolded.
            wide = target.options.update(max_width=10_000)
            width = Measurement.get(target, wide, table).maximum
            target = Console(file=target.file, width=max(width, target.width))
        target.print(table)


def _plain(value: Any) -> Any:
    """Return a JSON-ready value: ISO times, None for missing, numpy scalars as Python."""
    import pandas as pd  # noqa: PLC0415

    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _cell(value: Any) -> str:
    import pandas as pd  # noqa: PLC0415

    if isinstance(value, pd.Timestamp):
        stamp = value.tz_convert(UTC) if value.tzinfo else value
        return stamp.strftime("%Y-%m-%d %H:%M:%S")
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
