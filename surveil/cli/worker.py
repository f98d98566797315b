"""`surveil worker`, `surveil migrate` and `surveil demo`: run the pipeline."""

from __future__ import annotations

import faulthandler
import signal
import time
from pathlib import Path

import click
from rich.markup import escape as markup_escape

from ingest.config import load_sources
from surveil.cli.base import Command, SettingsContext, env_option, pass_settings
from surveil.cli.console import out, print_table
from surveil.cli.kafka import require_broker
from surveil.compose import worker as stream_worker
from surveil.compose.runtime import is_local, open_warehouse
from surveil.demo.run import run_demo, webhook_line


@click.command(cls=Command)
@env_option("--model", "SURVEIL_MODEL", "'lexicon' or the path of a trained model artifact.")
@env_option(
    "--web-port", "SURVEIL_WEB_PORT", "Port of the worker's web page on 127.0.0.1.", type=int
)
@env_option("--slack-webhook", "SURVEIL_ALERT_SLACK_WEBHOOK", "Slack incoming-webhook URL.")
@env_option(
    "--role",
    "SURVEIL_WORKER_ROLE",
    "all (default), classify (docs.raw to docs.scored; run several) or store (ClickHouse, "
    "alerts, the query endpoint; one per embedded chDB).",
    type=click.Choice(["all", "classify", "store"]),
)
@pass_settings
def worker(
    ctx: SettingsContext,
    model: str | None,
    web_port: int | None,
    slack_webhook: str | None,
    role: str | None,
) -> None:
    """Run the stream worker (classify, store, alerts agents) until Ctrl-C or SIGTERM.

    SIGUSR1 prints every thread's stack to stderr (and the event loop's tasks once it runs),
    for a worker that seems stuck.
    """
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = ctx.settings(
        model=model, web_port=web_port, alert_slack_webhook=slack_webhook, worker_role=role
    )
    require_broker(settings)
    stream_worker.run(settings)


@click.command(cls=Command)
@pass_settings
def migrate(ctx: SettingsContext) -> None:
    """Apply pending ClickHouse migrations (safe to repeat)."""
    warehouse = open_warehouse(ctx.settings(), migrate=False)
    applied = warehouse.migrate()
    warehouse.close()
    out.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@click.command(cls=Command)
@click.option(
    "--live",
    is_flag=True,
    help="Ingest the public feeds of sources.yaml instead of the bundled synthetic sample.",
)
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(path_type=Path, exists=True),
    default="sources.yaml",
    show_default=True,
    help="Sources file for --live.",
)
@env_option(
    "--slack-webhook",
    "SURVEIL_ALERT_SLACK_WEBHOOK",
    "Post alerts here instead of to a local receiver the demo starts.",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the worker.")
@pass_settings
def demo(
    ctx: SettingsContext, live: bool, sources_file: Path, slack_webhook: str | None, timeout: float
) -> None:
    """Run the whole pipeline once: broker, worker, a feed, scores and alerts."""
    # The demo shows alerts at once: no group wait, no interval before the resolved message.
    settings = ctx.settings(
        alert_slack_webhook=slack_webhook, alert_group_wait_s=0.0, alert_group_interval_s=0.0
    )
    if not is_local(settings):  # a local broker the demo starts itself
        require_broker(settings)
    started = time.monotonic()
    sources = load_sources(sources_file, body_max_chars=settings.body_max_chars) if live else None
    result = run_demo(settings, sources, timeout=timeout, echo=out.print)
    print_table("Scores per ticker", *result.scores)
    print_table("Alerts", *result.alerts)
    for post in result.webhook_posts:
        text = markup_escape(webhook_line(post, sample=not live))
        out.print(f"[bold]webhook received:[/bold] {text}", highlight=False)
    out.print(
        f"{result.documents} documents, {result.scored} (document, ticker) scores, "
        f"{result.rejected} rejected; {len(result.alerts[1])} alert(s); "
        f"{time.monotonic() - started:.1f} s"
    )
