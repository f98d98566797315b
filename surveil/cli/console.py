"""The command line's two consoles: results on stdout, errors and warnings on stderr."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
err = Console(stderr=True)


def error(message: str) -> None:
    """Print ``error: message`` on stderr, on one line however long it is."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr, on one line however long it is."""
    err.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)


def print_table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Print rows under their column names on stdout."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out.print(table)
