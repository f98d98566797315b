"""The `surveil` command line. Every option names its environment variable in --help.

Each command group lives in its own module, imported only when the command runs:
kafka, worker (worker, migrate, demo), ingest (ingest, sources), train, models, eval
(eval, classify), query (query), plot, runs (replay, runs) and alerts (alerts, rules).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from surveil.cli.base import Group, SettingsContext, env_option

# name -> ("module:attribute", the short help `surveil --help` shows without importing it);
# tests/test_cli.py checks that each short help is the command's own.
COMMANDS = {
    "alerts": (
        "surveil.cli.alerts:alerts_group",
        "The alert audit trail: list and show alerts, acknowledge them, silence tickers/rules.",
    ),
    "classify": (
        "surveil.cli.eval:classify_command",
        "Label texts from FILE or stdin (lines, CSV with 'text', or JSONL); print JSONL.",
    ),
    "demo": (
        "surveil.cli.worker:demo",
        "Run the whole pipeline once: broker, worker, a feed, scores and alerts.",
    ),
    "eval": (
        "surveil.cli.eval:eval_command",
        "Score a model on labelled data: per-class and averaged F1, beside the lexicon.",
    ),
    "ingest": ("surveil.cli.ingest:ingest_group", "Fetch documents and put them on docs.raw."),
    "kafka": (
        "surveil.cli.kafka:kafka",
        "Run the local single-node Kafka broker (KRaft) that the embedded mode uses.",
    ),
    "migrate": (
        "surveil.cli.worker:migrate",
        "Apply pending ClickHouse migrations (safe to repeat).",
    ),
    "models": ("surveil.cli.models:models_group", "Trained model artifacts."),
    "plot": (
        "surveil.cli.plot:plot_command",
        "Draw a ticker's sentiment, document counts and alerts over time as a PNG.",
    ),
    "query": (
        "surveil.cli.query:query_group",
        "Query the data: sentiment series, documents, alerts, or raw read-only SQL.",
    ),
    "replay": (
        "surveil.cli.runs:replay_command",
        "Replay a range of docs.raw into the run's own database; alerts are recorded, never sent.",
    ),
    "rules": ("surveil.cli.alerts:rules_group", "Alert rules files."),
    "runs": ("surveil.cli.runs:runs_group", "Replay runs: list them, compare two."),
    "sources": ("surveil.cli.ingest:sources_group", "Sources files (sources.yaml)."),
    "train": (
        "surveil.cli.train:train_command",
        "Fine-tune the two-head classifier and write a versioned artifact.",
    ),
    "worker": (
        "surveil.cli.worker:worker",
        "Run the stream worker (classify, store, alerts agents) until Ctrl-C or SIGTERM.",
    ),
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="surveil", prog_name="surveil", message="%(prog)s %(version)s")
@env_option(
    "--state-dir",
    "SURVEIL_STATE_DIR",
    "Folder for Kafka data, chDB and run state.",
    type=click.Path(path_type=Path),
)
@env_option("--broker", "SURVEIL_KAFKA_BROKER", "Kafka URL, e.g. kafka://127.0.0.1:9092.")
@env_option(
    "--clickhouse-dsn",
    "SURVEIL_CLICKHOUSE_DSN",
    "chdb:///abs/path or http(s)://host:8123 (default: chDB in the state dir).",
)
@env_option(
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
    ctx.obj = SettingsContext(
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


def main() -> None:
    """Entry point of the `surveil` script."""
    cli(prog_name="surveil")
