"""`surveil ingest` (fetch sources once or on a schedule, or parse one recorded file) and
`surveil sources check`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from infra.errors import SourceError, SourcesError
from infra.settings import Settings
from ingest.base import Batch, split
from ingest.config import KINDS, load_specs, make_source
from ingest.files import read_file
from ingest.rss import RssSource
from ingest.runner import RunResult
from streams.records import utcnow
from surveil.cli.base import Group, SettingsContext, env_option, pass_settings
from surveil.cli.console import err, out
from surveil.compose.ingestion import linker, open_ingestor, run_forever, run_once

F = TypeVar("F", bound=Callable[..., Any])


@click.group("ingest", cls=Group)
def ingest_group() -> None:
    """Fetch documents and put them on docs.raw."""


@ingest_group.command("feed")
@click.argument("location")
@click.option("--source", "name", default=None, help="Source name (default: the location).")
@click.option("--ticker", "tickers", multiple=True, help="Ticker every entry is about.")
@pass_settings
def ingest_feed(
    ctx: SettingsContext, location: str, name: str | None, tickers: Sequence[str]
) -> None:
    """Ingest one RSS/Atom feed from a URL or a file, once, through the Ingestor (ticker
    linking, seen ids, near-duplicates, dead letters), as every source is."""
    settings = ctx.settings()
    source = RssSource(
        name or location, location, tickers=tickers, body_max_chars=settings.body_max_chars
    )
    with open_ingestor(settings, []) as ingestor:
        result = ingestor.run(source)
    _print_results([result])
    if result.error:
        raise click.exceptions.Exit(1)


def _selection(command: F) -> F:
    """Add --source (repeatable) and --sources FILE to a command."""
    command = env_option(
        "--sources",
        "SURVEIL_SOURCES_FILE",
        "The sources file.",
        "sources_file",
        type=click.Path(path_type=Path, dir_okay=False),
    )(command)
    return click.option("--source", "names", multiple=True, help="Only this source (repeatable).")(
        command
    )


@ingest_group.command("once")
@_selection
@pass_settings
def ingest_once(ctx: SettingsContext, names: Sequence[str], sources_file: Path | None) -> None:
    """Run every source (or the named ones) once, then exit."""
    results = run_once(ctx.settings(sources_file=sources_file), names)
    _print_results(results)
    if results and all(r.error for r in results):
        raise click.exceptions.Exit(1)


@ingest_group.command("run")
@_selection
@pass_settings
def ingest_run(ctx: SettingsContext, names: Sequence[str], sources_file: Path | None) -> None:
    """Run the sources on their intervals until Ctrl-C or SIGTERM (runs in progress finish)."""
    run_forever(ctx.settings(sources_file=sources_file), names)


@ingest_group.command("parse")
@click.option("--kind", type=click.Choice(list(KINDS)), required=True, help="The source kind.")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--link/--no-link",
    default=True,
    show_default=True,
    help="Link and validate tickers against the symbol lists under the shared folder.",
)
@env_option(
    "--max-bytes",
    "SURVEIL_INGEST_MAX_BYTES",
    "Largest file read, in bytes; the cap fetches use "
    f"(default {Settings.model_fields['ingest_max_bytes'].default}).",
    type=int,
)
@pass_settings
def ingest_parse(
    ctx: SettingsContext, kind: str, file: Path, link: bool, max_bytes: int | None
) -> None:
    """Print the normalised documents of one recorded file as JSON lines.

    Rejected inputs go to stderr. Exit status: 0 when documents were parsed, or when the
    file is a well-formed input without entries (stderr says "no entries in FILE"); 1 when
    the file cannot be read, is larger than --max-bytes, or gave rejects and no document.
    """
    settings = ctx.settings(ingest_max_bytes=max_bytes)
    batch = _parse(settings, kind, file)
    linking = linker(settings) if link else None
    for doc in batch.documents:
        if linking is not None:
            linked = linking.link(doc)
            doc = linked.doc  # noqa: PLW2901 - the linked version replaces it
            for symbol in linked.unknown:
                err.print(f"unknown_ticker: {symbol!r} in {doc.doc_id}", highlight=False)
        click.echo(json.dumps(doc.to_json(), ensure_ascii=False))
    for rej in batch.rejected:
        err.print(f"{rej.reason}: {rej.detail}", highlight=False, markup=False)
    if not batch.documents and not batch.rejected:
        # A quiet feed (no trade halts today) is an answer, not a failure.
        err.print(f"no entries in {file}", highlight=False, markup=False)
        return
    err.print(f"{len(batch.documents)} documents, {len(batch.rejected)} rejected", highlight=False)
    if not batch.documents:
        raise click.exceptions.Exit(1)


def _parse(settings: Settings, kind: str, file: Path) -> Batch:
    """Parse one recorded file as the source ``kind`` does, within the byte cap.

    Raises:
        SourceError: the file cannot be read or is over the cap.
    """
    cap = settings.ingest_max_bytes
    try:
        size = file.stat().st_size
        if size > cap:
            # Refused before reading: parsing a feed costs many times its size in memory.
            msg = f"{file}: {size} bytes, over the {cap}-byte cap (raise it with --max-bytes)"
            raise SourceError(msg, reason="too_large")
        source = make_source(kind, file.name, str(file), body_max_chars=settings.body_max_chars)
        # read_file bounds the read again, in case the file grew since stat().
        return split(source.parse(read_file(str(file.resolve()), cap), utcnow()))
    except OSError as exc:
        raise SourceError(str(exc), reason="unreadable") from exc


def _print_results(results: Sequence[RunResult]) -> None:
    table = Table(title="ingest runs")
    for column in ("source", "new", "already sent", "near-dup", "rejected", "s", "status"):
        table.add_column(column)
    for r in results:
        status = r.error or ("not modified" if r.not_modified else "ok")
        table.add_row(
            r.source,
            str(r.documents),
            str(r.duplicates),
            str(r.near_duplicates),
            str(r.rejected),
            f"{r.seconds:.1f}",
            status,
        )
    out.print(table)


@click.group("sources", cls=Group)
def sources_group() -> None:
    """Sources files (sources.yaml)."""


@sources_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@pass_settings
def sources_check(ctx: SettingsContext, file: Path | None) -> None:
    """Validate a sources file; print every problem with file, line and field; exit 1 on any.

    FILE defaults to the configured sources file (SURVEIL_SOURCES_FILE, else sources.yaml).
    """
    path = file or ctx.settings().sources_file
    try:
        specs = load_specs(path)
    except SourcesError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) in {path}", highlight=False, soft_wrap=True)
        raise click.exceptions.Exit(1) from None
    enabled = sum(s.enabled for s in specs)
    off = f" ({len(specs) - enabled} disabled)" if enabled < len(specs) else ""
    out.print(f"{path}: {len(specs)} sources OK{off}", highlight=False, soft_wrap=True)
