"""The `surveil` command line. Every option names its environment variable in --help."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from infra.errors import BrokerError, ConfigError, SurveilError
from infra.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err_console = Console(stderr=True)


def _option(name: str, env: str, help_: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(name, envvar=env, show_envvar=True, default=None, help=help_, **kwargs)


class _Context:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = {k: v for k, v in overrides.items() if v is not None}

    def settings(self, **more: Any) -> Settings:
        values = {**self.overrides, **{k: v for k, v in more.items() if v is not None}}
        try:
            return Settings(**values)
        except ValidationError as exc:
            _fail(ConfigError(settings_problems(exc)))


pass_ctx = click.make_pass_decorator(_Context)


def settings_problems(exc: ValidationError) -> str:
    """Say on one line which settings are invalid, by their environment variable and why."""
    fields = Settings.model_fields
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        what = error["msg"].removeprefix("Value error, ")
        field = fields.get(name)
        # A value_error's message quotes the value itself; a secret's value is never shown.
        if error["type"] != "value_error" and "SecretStr" not in str(field and field.annotation):
            what += f", got {error['input']!r}"
        problems.append(f"SURVEIL_{name.upper()} ({name}): {what}" if name else what)
    return f"invalid setting{'s' if len(problems) > 1 else ''} " + "; ".join(problems)


def _fail(exc: SurveilError) -> NoReturn:
    err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    sys.exit(1)


def _require_broker(settings: Settings) -> None:
    """Exit 1 at once when no broker answers, instead of Kafka clients retrying for 30 s."""
    from surveil.runtime import reachable  # noqa: PLC0415

    if not reachable(settings.bootstrap_servers):
        msg = (
            f"no Kafka broker answers at {settings.bootstrap_servers}: start one with "
            "`surveil kafka start` (or set SURVEIL_KAFKA_BROKER)"
        )
        _fail(BrokerError(msg))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="surveil", prog_name="surveil", message="%(prog)s %(version)s")
@_option(
    "--state-dir",
    "SURVEIL_STATE_DIR",
    "Folder for Kafka data, chDB and run state.",
    type=click.Path(path_type=Path),
)
@_option("--broker", "SURVEIL_KAFKA_BROKER", "Kafka URL, e.g. kafka://127.0.0.1:9092.")
@_option(
    "--clickhouse-dsn",
    "SURVEIL_CLICKHOUSE_DSN",
    "chdb:///abs/path or http(s)://host:8123 (default: chDB in the state dir).",
)
@_option(
    "--log-level",
    "SURVEIL_LOG_LEVEL",
    "debug, info, warning or error.",
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.pass_context
def cli(
    ctx: click.Context,
    state_dir: Path | None,
    broker: str | None,
    clickhouse_dsn: str | None,
    log_level: str | None,
) -> None:
    """Streaming market surveillance: feeds to scores to alerts."""
    ctx.obj = _Context(
        {
            "state_dir": state_dir,
            "kafka_broker": broker,
            "clickhouse_dsn": clickhouse_dsn,
            "log_level": log_level,
        }
    )
    level = ctx.obj.settings().log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "apscheduler", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


# --- kafka -------------------------------------------------------------------------


@cli.group()
def kafka() -> None:
    """Run the local single-node Kafka broker (KRaft) that the embedded mode uses."""


@kafka.command("start")
@pass_ctx
def kafka_start(ctx: _Context) -> None:
    """Start the local broker (formatting its storage once) and create the topics."""
    from infra.topics import ensure_topics  # noqa: PLC0415 - keep --help fast
    from streams.topics import ALL_TOPICS, with_prefix  # noqa: PLC0415
    from surveil.runtime import local_kafka  # noqa: PLC0415

    settings = ctx.settings()
    broker = local_kafka(settings)
    try:
        if broker.start():
            console.print(f"started Kafka on {broker.bootstrap} (data in {broker.home})")
        else:
            console.print(
                f"Kafka is already running on {broker.bootstrap} (pid {broker.status().pid})"
            )
        topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
        created = ensure_topics(broker.bootstrap, topics, settings.kafka_partitions)
        if created:
            console.print(f"created topics: {', '.join(created)}")
    except SurveilError as exc:
        _fail(exc)


@kafka.command("stop")
@pass_ctx
def kafka_stop(ctx: _Context) -> None:
    """Stop the local broker cleanly; its data stays."""
    from surveil.runtime import local_kafka  # noqa: PLC0415

    broker = local_kafka(ctx.settings())
    try:
        stopped = broker.stop()
    except SurveilError as exc:
        _fail(exc)
    console.print("stopped Kafka" if stopped else "Kafka is not running")


@kafka.command("status")
@pass_ctx
def kafka_status(ctx: _Context) -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    from surveil.runtime import local_kafka  # noqa: PLC0415

    broker = local_kafka(ctx.settings())
    status = broker.status()
    if status.running and broker.answers():
        console.print(f"running: pid {status.pid}, {status.bootstrap}, data in {status.home}")
    elif status.running:
        console.print(
            f"not answering: pid {status.pid} runs but {status.bootstrap} does not answer "
            f"(logs in {status.home / 'logs'}); `surveil kafka stop` then `surveil kafka start`"
        )
        sys.exit(1)
    else:
        console.print(f"not running (data in {status.home})")
        sys.exit(1)


# --- worker, ingest, migrate -----------------------------------------------------------


@cli.command()
@_option("--model", "SURVEIL_MODEL", "'lexicon' or the path of a trained model artifact.")
@_option("--web-port", "SURVEIL_WEB_PORT", "Port of the worker's web page on 127.0.0.1.", type=int)
@_option("--slack-webhook", "SURVEIL_ALERT_SLACK_WEBHOOK", "Slack incoming-webhook URL.")
@pass_ctx
def worker(
    ctx: _Context, model: str | None, web_port: int | None, slack_webhook: str | None
) -> None:
    """Run the stream worker (classify, store, signals, alerts) until Ctrl-C or SIGTERM.

    SIGUSR1 prints every thread's stack to stderr (and the event loop's tasks once it runs),
    for a worker that seems stuck.
    """
    import faulthandler  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from surveil.worker import run  # noqa: PLC0415

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = ctx.settings(model=model, web_port=web_port, alert_slack_webhook=slack_webhook)
    _require_broker(settings)
    try:
        run(settings)
    except SurveilError as exc:
        _fail(exc)


@cli.command()
@pass_ctx
def migrate(ctx: _Context) -> None:
    """Apply pending ClickHouse migrations (safe to repeat)."""
    from surveil.runtime import open_warehouse  # noqa: PLC0415

    try:
        warehouse = open_warehouse(ctx.settings(), migrate=False)
        applied = warehouse.migrate()
        warehouse.close()
    except SurveilError as exc:
        _fail(exc)
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


# --- demo ------------------------------------------------------------------------------


@cli.command()
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
@_option(
    "--slack-webhook",
    "SURVEIL_ALERT_SLACK_WEBHOOK",
    "Post alerts here instead of to a local receiver the demo starts.",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the worker.")
@pass_ctx
def demo(
    ctx: _Context, live: bool, sources_file: Path, slack_webhook: str | None, timeout: float
) -> None:
    """Run the whole pipeline once: broker, worker, a feed, scores and alerts."""
    from ingest.config import load_sources  # noqa: PLC0415
    from surveil.demo import run_demo, webhook_line  # noqa: PLC0415
    from surveil.runtime import is_local  # noqa: PLC0415

    # The demo shows alerts at once: no group wait, no interval before the resolved message.
    settings = ctx.settings(
        alert_slack_webhook=slack_webhook, alert_group_wait_s=0.0, alert_group_interval_s=0.0
    )
    if not is_local(settings):  # a local broker the demo starts itself
        _require_broker(settings)
    started = time.monotonic()
    try:
        sources = (
            load_sources(sources_file, body_max_chars=settings.body_max_chars) if live else None
        )
        result = run_demo(settings, sources, timeout=timeout, echo=console.print)
    except SurveilError as exc:
        _fail(exc)
    _print_table("Scores per ticker", *result.scores)
    _print_table("Alerts", *result.alerts)
    for post in result.webhook_posts:
        text = markup_escape(webhook_line(post, sample=not live))
        console.print(f"[bold]webhook received:[/bold] {text}", highlight=False)
    console.print(
        f"{result.documents} documents, {result.scored} (document, ticker) scores, "
        f"{result.rejected} rejected; {len(result.alerts[1])} alert(s); "
        f"{time.monotonic() - started:.1f} s"
    )


def _print_table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def _register() -> None:
    from surveil.cli_alerts import alerts_group, rules_group  # noqa: PLC0415
    from surveil.cli_eval import classify_command, eval_command  # noqa: PLC0415
    from surveil.cli_ingest import ingest_group, sources_group  # noqa: PLC0415
    from surveil.cli_models import models_group, train_command  # noqa: PLC0415
    from surveil.cli_quant import plot_command, query_group  # noqa: PLC0415
    from surveil.cli_runs import replay_command, runs_group  # noqa: PLC0415

    cli.add_command(train_command)
    cli.add_command(eval_command)
    cli.add_command(classify_command)
    cli.add_command(models_group)
    cli.add_command(ingest_group)
    cli.add_command(sources_group)
    cli.add_command(query_group)
    cli.add_command(plot_command)
    cli.add_command(replay_command)
    cli.add_command(runs_group)
    cli.add_command(alerts_group)
    cli.add_command(rules_group)


_register()


def main() -> None:
    """Entry point of the `surveil` script."""
    cli(prog_name="surveil")


if __name__ == "__main__":
    main()
