"""`surveil kafka start|stop|status`: the local single-node broker; `require_broker`."""

from __future__ import annotations

import click

from infra.errors import BrokerError
from infra.settings import Settings
from infra.topics import ensure_topics
from streams.topics import ALL_TOPICS, with_prefix
from surveil.cli.base import Group, SettingsContext, pass_settings
from surveil.cli.console import out
from surveil.compose.runtime import local_kafka, reachable


def require_broker(settings: Settings) -> None:
    """Exit 1 at once when no broker answers, instead of Kafka clients retrying for 30 s.

    Raises:
        BrokerError: no broker of the bootstrap list accepts a connection.
    """
    if not reachable(settings.bootstrap_servers):
        msg = (
            f"no Kafka broker answers at {settings.bootstrap_servers}: start one with "
            "`surveil kafka start` (or set SURVEIL_KAFKA_BROKER)"
        )
        raise BrokerError(msg)


@click.group(cls=Group)
def kafka() -> None:
    """Run the local single-node Kafka broker (KRaft) that the embedded mode uses."""


@kafka.command("start")
@pass_settings
def kafka_start(ctx: SettingsContext) -> None:
    """Start the local broker (formatting its storage once) and create the topics."""
    settings = ctx.settings()
    broker = local_kafka(settings)
    if broker.start():
        out.print(f"started Kafka on {broker.bootstrap} (data in {broker.home})")
    else:
        out.print(f"Kafka is already running on {broker.bootstrap} (pid {broker.status().pid})")
    topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
    created = ensure_topics(broker.bootstrap, topics, settings.kafka_partitions)
    if created:
        out.print(f"created topics: {', '.join(created)}")


@kafka.command("stop")
@pass_settings
def kafka_stop(ctx: SettingsContext) -> None:
    """Stop the local broker cleanly; its data stays."""
    stopped = local_kafka(ctx.settings()).stop()
    out.print("stopped Kafka" if stopped else "Kafka is not running")


@kafka.command("status")
@pass_settings
def kafka_status(ctx: SettingsContext) -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    broker = local_kafka(ctx.settings())
    status = broker.status()
    if status.running and broker.answers():
        out.print(f"running: pid {status.pid}, {status.bootstrap}, data in {status.home}")
        return
    if status.running:
        out.print(
            f"not answering: pid {status.pid} runs but {status.bootstrap} does not answer "
            f"(logs in {status.home / 'logs'}); `surveil kafka stop` then `surveil kafka start`"
        )
    else:
        out.print(f"not running (data in {status.home})")
    raise click.exceptions.Exit(1)
