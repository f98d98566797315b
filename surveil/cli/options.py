"""Options the read commands share: times (TS), ranges, bucket widths, output, runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from infra.errors import SurveilError
from surveil.quant import DEFAULT_FREQ
from surveil.quant.times import parse_freq

F = TypeVar("F", bound=Callable[..., Any])

TIME_HELP = (
    "TS is an ISO date or datetime: 2026-03-02, 2026-03-02T13:00, 2026-03-02T13:00:00Z or "
    "2026-03-02T15:00+02:00. Naive times are UTC; --from is inclusive, --to exclusive."
)


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
    try:
        return parse_freq(value).name
    except SurveilError as exc:
        raise click.BadParameter(str(exc)) from exc


def freq_option(help_: str) -> Callable[[F], F]:
    """Add --freq, a bucket width checked and named as the queries name it."""
    return click.option(
        "--freq",
        default=DEFAULT_FREQ,
        show_default=True,
        callback=_freq,
        metavar="WIDTH",
        help=help_,
    )


def run_option(command: F) -> F:
    """Add --run: read a replay run's database instead of the live one."""
    return click.option(
        "--run",
        "run",
        default=None,
        metavar="ID",
        help="Read this replay run's results (`surveil runs list`) instead of the live data.",
    )(command)


def window_options(command: F) -> F:
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


def as_of_option(command: F) -> F:
    """Add --as-of: what was known at a point in time."""
    return click.option(
        "--as-of",
        type=TS,
        default=None,
        help="Point in time: only rows published, scored and ingested by then.",
    )(command)


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The range of --from and --to, each defaulted: up to now, 24 hours long."""
    end = end or datetime.now(UTC)
    return start or end - timedelta(hours=24), end


def span(start: datetime, end: datetime) -> str:
    """Say a range in words, for the message of an empty result."""
    return f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def output_options(command: F) -> F:
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
