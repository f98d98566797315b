"""`surveil replay` and `surveil runs`: backtest runs over past ranges of docs.raw."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from surveil.cli.base import Command, Group, SettingsContext, pass_settings
from surveil.cli.console import out, warn
from surveil.cli.kafka import require_broker
from surveil.cli.options import TS
from surveil.replay.diff import RunDiff, compare_runs
from surveil.replay.run import future_range_note, replay
from surveil.replay.runs import list_runs
from surveil.replay.select import Selection


@click.command("replay", cls=Command)
@click.option("--from", "start", type=TS, required=True, help="Range start, UTC (see --by).")
@click.option("--to", "end", type=TS, required=True, help="Range end, exclusive.")
@click.option(
    "--by",
    type=click.Choice(["published", "ingested"]),
    default="published",
    show_default=True,
    help="Which time --from/--to select on: published, the documents' publication time "
    "(reads all of docs.raw); ingested, their Kafka timestamps (when docs.raw received them).",
)
@click.option("--run-id", required=True, help="Name of the run (letters, digits, _).")
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help="'lexicon' or a trained artifact (default: the model setting).",
)
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="max, or Nx to pace documents at N times the rate of the --by clock.",
)
@click.option("--replace", is_flag=True, help="Drop an existing run of that id first.")
@pass_settings
def replay_command(
    ctx: SettingsContext,
    start: datetime,
    end: datetime,
    by: Selection,
    run_id: str,
    model: Path | None,
    speed: str,
    replace: bool,
) -> None:
    """Replay a range of docs.raw into the run's own database; alerts are recorded, never sent.

    Exits 1 when the range selects no document, saying what docs.raw holds. Warns when
    --to is later than now: documents still arriving will make a later replay differ.
    """
    settings = ctx.settings()
    require_broker(settings)
    note = future_range_note(end, datetime.now(UTC))
    if note:
        warn(note)
    report = replay(
        settings,
        run_id,
        start,
        end,
        by=by,
        model=str(model) if model else None,
        speed=speed,
        progress=sys.stderr.isatty(),
        replace=replace,
    )
    out.print(
        f"run {report.run_id} ({report.database}, model {report.model_version}, by {by}): "
        f"{report.documents} documents, {report.scores} scores, {report.alerts} alert states "
        f"(dry run), {report.rejected} rejected, {report.seconds:.1f} s",
        soft_wrap=True,
    )


@click.group("runs", cls=Group)
def runs_group() -> None:
    """Replay runs: list them, compare two."""


@runs_group.command("list")
@pass_settings
def runs_list(ctx: SettingsContext) -> None:
    """List the replay runs, newest first."""
    runs = list_runs(ctx.settings())
    if not runs:
        out.print("no runs yet: `surveil replay --from ... --to ... --run-id NAME`")
        return
    table = Table(title="replay runs", caption="times in UTC")
    # The run id is what `runs diff` and `replay --replace` take: it is never cut.
    table.add_column("run", no_wrap=True, min_width=max(len(r["run_id"]) for r in runs))
    for column in ("range", "model", "documents", "scores", "alerts", "status", "started"):
        table.add_column(column, overflow="fold")
    for r in runs:
        table.add_row(
            r["run_id"],
            f"{r['range_from']:%Y-%m-%d %H:%M} .. {r['range_to']:%Y-%m-%d %H:%M}",
            str(r["model_version"]),
            str(r["documents"]),
            str(r["scores"]),
            str(r["alerts"]),
            str(r["status"]),
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
        )
    out.print(table)


@runs_group.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--freq", default="1h", show_default=True, help="Bucket width to compare at.")
@click.option("--rows", default=20, show_default=True, help="Differing rows to show.")
@pass_settings
def runs_diff(ctx: SettingsContext, run_a: str, run_b: str, freq: str, rows: int) -> None:
    """Compare two runs' sentiment per (ticker, bucket) and their alerts; exit 1 if they differ."""
    diff = compare_runs(ctx.settings(), run_a, run_b, freq)
    for note in diff.notes:
        warn(note)
    _print_series(diff, run_a, run_b, freq, rows)
    _print_alerts(diff, run_a, run_b, rows)
    if diff.differs:
        raise click.exceptions.Exit(1)


def _print_series(diff: RunDiff, run_a: str, run_b: str, freq: str, rows: int) -> None:
    series = diff.series
    differing = series[series["differs"]]
    both = series[series["present"] == "both"]
    only = {side: int((series["present"] == side).sum()) for side in ("a", "b")}
    largest = (
        f"max |mean difference| {both['mean_diff'].abs().max():.6f} over the {len(both)} "
        "buckets both have"
        if len(both)
        else "no bucket in both runs"
    )
    out.print(
        f"{len(series)} (ticker, bucket) rows compared at {freq}: {len(differing)} differ "
        f"({only['a']} only in a, {only['b']} only in b); {largest}",
        soft_wrap=True,
    )
    if differing.empty:
        return
    table = Table(title=f"{run_a} (a) vs {run_b} (b)")
    for column in ("ticker", "bucket", "docs a", "docs b", "mean a", "mean b", "b - a"):
        table.add_column(column)
    for r in differing.head(rows).itertuples():
        table.add_row(
            str(r.ticker),
            f"{r.bucket:%Y-%m-%d %H:%M}",
            str(r.documents_a),
            str(r.documents_b),
            "-" if r.present == "b" else f"{r.mean_a:+.4f}",
            "-" if r.present == "a" else f"{r.mean_b:+.4f}",
            f"only in {r.present}" if r.present != "both" else f"{r.mean_diff:+.4f}",
        )
    out.print(table)


def _print_alerts(diff: RunDiff, run_a: str, run_b: str, rows: int) -> None:
    in_a, in_b = diff.alert_counts
    out.print(
        f"alert states: {in_a} in a, {in_b} in b; {len(diff.alerts_only_a)} only in a, "
        f"{len(diff.alerts_only_b)} only in b",
        soft_wrap=True,
    )
    differing = [("a", *key) for key in diff.alerts_only_a]
    differing += [("b", *key) for key in diff.alerts_only_b]
    if not differing:
        return
    table = Table(title=f"alert states of {run_a} (a) vs {run_b} (b)", caption="times in UTC")
    for column in ("only in", "ticker", "rule", "state", "fired at"):
        table.add_column(column)
    for side, ticker, rule, state, fired_at in differing[:rows]:
        table.add_row(side, str(ticker), str(rule), str(state), f"{fired_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)
