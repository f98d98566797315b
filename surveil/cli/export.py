"""Write a query's frame as a table, CSV, JSON lines or Parquet, to stdout or a file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import click
import pandas as pd
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from surveil.cli.console import out as stdout


def check_out(fmt: str, out: Path | None) -> None:
    """Refuse --format parquet without --out: Parquet is no terminal's format."""
    if fmt == "parquet" and out is None:
        msg = "--format parquet needs --out FILE"
        raise click.UsageError(msg)


def emit(
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


def _write(
    frame: pd.DataFrame, fmt: str, handle: IO[str] | None, table_columns: Sequence[str] | None
) -> None:
    if fmt == "json":
        for record in frame.to_dict(orient="records"):
            line = json.dumps({str(k): _plain(v) for k, v in record.items()}, ensure_ascii=False)
            click.echo(line, file=handle)
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False, file=handle)
    else:
        _write_table(frame, handle, table_columns)


def _write_table(
    frame: pd.DataFrame, handle: IO[str] | None, table_columns: Sequence[str] | None
) -> None:
    columns = [c for c in (table_columns or frame.columns) if c in frame.columns]
    zoned = any(isinstance(frame[c].dtype, pd.DatetimeTZDtype) for c in columns)
    caption = f"{len(frame)} row{'' if len(frame) == 1 else 's'}"
    table = Table(caption=caption + ("; times in UTC" if zoned else ""))
    for column in columns:
        table.add_column(str(column), overflow="fold")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    target = stdout if handle is None else Console(file=handle)
    if not target.is_terminal:
        # A terminal gets the table fitted to it; a pipe or a file gets it unfolded.
        wide = target.options.update(max_width=10_000)
        width = Measurement.get(target, wide, table).maximum
        target = Console(file=target.file, width=max(width, target.width))
    target.print(table)


def _plain(value: Any) -> Any:
    """Return a JSON-ready value: ISO times, None for missing, numpy scalars as Python."""
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
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_convert(UTC) if value.tzinfo else value
        return stamp.strftime("%Y-%m-%d %H:%M:%S")
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
