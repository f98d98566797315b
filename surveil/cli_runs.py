"""`surveil replay` and `surveil runs`: backtest runs over past ranges of docs.raw."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from infra.errors import SurveilError
from surveil.cli_quant import TS

console = Console()


def _fail(exc: SurveilError) -> None:
    console.print(f"[red]error:[/red] {exc}", highlight=False)
    sys.exit(1)


@click.command("replay")
@click.option("--from", "start", type=TS, required=True, help="Range start (Kafka time, UTC).")
@click.option("--to", "end", type=TS, required=True, help="Range end, exclusive.")
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
    help="max, or Nx to pace documents at N times their original rate.",
)
@click.option("--replace", is_flag=True, help="Drop an existing run of that id first.")
@click.pass_context
def replay_command(
    ctx: click.Context,
    start: datetime,
    end: datetime,
    run_id: str,
    model: Path | None,
    speed: str,
    replace: bool,
) -> None:
    """Replay a range of docs.raw into the run's own database; alerts are recorded, never sent."""
    from surveil.replay import replay  # noqa: PLC0415 - loads the model stack

    settings = ctx.obj.settings()
    try:
        report = replay(
            settings,
            run_id,
            start,
            end,
            model=str(model) if model else None,
            speed=speed,
            progress=sys.stderr.isatty(),
            replace=replace,
        )
    except SurveilError as exc:
        _fail(exc)
    console.print(
        f"run {report.run_id} ({report.database}, model {report.model_version}): "
        f"{report.documents} documents, {report.scores} scores, {report.alerts} alert states "
        f"(dry run), {report.rejected} rejected, {report.seconds:.1f} s",
        soft_wrap=True,
    )


@click.group("runs")
def runs_group() -> None:
    """Replay runs: list them, compare two."""


@runs_group.command("list")
@click.pass_context
def runs_list(ctx: click.Context) -> None:
    """List the replay runs, newest first."""
    from surveil.replay import list_runs  # noqa: PLC0415

    try:
        runs = list_runs(ctx.obj.settings())
    except SurveilError as exc:
        _fail(exc)
    if not runs:
        console.print("no runs yet: `surveil replay --from ... --to ... --run-id NAME`")
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
    console.print(table)


@runs_group.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--freq", default="1h", show_default=True, help="Bucket width to compare at.")
@click.option("--rows", default=20, show_default=True, help="Differing rows to show.")
@click.pass_context
def runs_diff(ctx: click.Context, run_a: str, run_b: str, freq: str, rows: int) -> None:
    """Compare two runs' sentiment series per (ticker, bucket); exit 1 when they differ."""
    from surveil.replay import diff_runs  # noqa: PLC0415

    try:
        diff = diff_runs(ctx.obj.settings(), run_a, run_b, freq)
    except SurveilError as exc:
        _fail(exc)
    differing = diff[diff["differs"]]
    console.print(
        f"{len(diff)} (ticker, bucket) rows compared at {freq}: {len(differing)} differ; "
        f"max |mean difference| {diff['mean_diff'].abs().max():.6f}",
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
            f"{r.mean_a:+.4f}",
            f"{r.mean_b:+.4f}",
            f"{r.mean_diff:+.4f}",
        )
    console.print(table)
    sys.exit(1)
