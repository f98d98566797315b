"""`surveil plot`: a ticker's sentiment, document counts and alerts over time as a PNG."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from surveil.cli.base import Command, SettingsContext, env_option, pass_settings
from surveil.cli.options import (
    TIME_HELP,
    as_of_option,
    freq_option,
    run_option,
    time_range,
    window_options,
)
from surveil.cli.query import open_quant, warn_unknown
from surveil.quant.plot import plot_sentiment


@click.command("plot", cls=Command, epilog=TIME_HELP)
@click.argument("ticker")
@window_options
@freq_option("Bucket width.")
@as_of_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The PNG file to write.",
)
@env_option(
    "--tz",
    "SURVEIL_PLOT_TZ",
    "Time zone of the time axis (IANA name, e.g. America/New_York).",
    default="UTC",
    show_default=True,
)
@run_option
@pass_settings
def plot_command(
    ctx: SettingsContext,
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
    start, end = time_range(start, end)
    name = ticker.upper()
    with open_quant(ctx, run=run) as quant:
        series = quant.sentiment([name], start, end, freq=freq, as_of=as_of)
        # By event time: the alerts of a backfill or replay fired long after their window.
        alerts = quant.alerts(start, end, tickers=[name], by="window_end")
        warn_unknown(quant, [name], [name] if len(series) else [])
    try:
        plot_sentiment(series, alerts, name, out, start=start, end=end, freq=freq, tz=tz)
    except OSError as exc:
        raise click.FileError(str(out), str(exc)) from exc
    documents = int(series["documents"].sum()) if len(series) else 0
    click.echo(
        f"wrote {out}: {documents} documents, {len(series)} buckets, {len(alerts)} alert states"
    )
