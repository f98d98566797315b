"""`surveil kafka start|stop|status`: the local broker or cluster; `require_broker`."""

from __future__ import annotations

import click

from infra.broker import BrokerStatus
from infra.cluster import started_size
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
    """Run the local single-node Kafka broker (KRaft) that the embedded mode uses.

    `kafka start --brokers 3` runs a local three-node cluster instead.
    """


@kafka.command("start")
@click.option(
    "--brokers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Nodes to run, broker and controller each; node i on the broker and controller "
    "ports plus 2i. With 3, topics get 3 replicas and min.insync.replicas=2.",
)
@pass_settings
def kafka_start(ctx: SettingsContext, brokers: int) -> None:
    """Start the local broker or cluster (formatting its storage once) and create the topics."""
    settings = ctx.settings()
    running = started_size(settings.kafka_home)
    if running != brokers and any(s.running for s in local_kafka(settings, running).status()):
        msg = (
            f"Kafka runs from {settings.kafka_home} with {running} broker(s), not {brokers}: "
            "stop it first with `surveil kafka stop`"
        )
        raise BrokerError(msg)
    cluster = local_kafka(settings, brokers)
    if cluster.start():
        out.print(f"started Kafka on {cluster.bootstrap} (data in {cluster.home})")
    else:
        pids = ", ".join(str(s.pid) for s in cluster.status())
        out.print(f"Kafka is already running on {cluster.bootstrap} (pid {pids})")
    if brokers > 1:
        out.print(
            f"clients reach every broker with SURVEIL_KAFKA_BROKER=kafka://{cluster.bootstrap}"
        )
    topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
    created = ensure_topics(cluster.bootstrap, topics, settings.kafka_partitions)
    if created:
        out.print(f"created topics: {', '.join(created)}")


@kafka.command("stop")
@pass_settings
def kafka_stop(ctx: SettingsContext) -> None:
    """Stop the local broker, or every broker of the local cluster, cleanly; data stays."""
    settings = ctx.settings()
    stopped = local_kafka(settings, started_size(settings.kafka_home)).stop()
    out.print("stopped Kafka" if stopped else "Kafka is not running")


@kafka.command("status")
@pass_settings
def kafka_status(ctx: SettingsContext) -> None:
    """Say whether each local broker runs and answers; exit 1 when one does not."""
    settings = ctx.settings()
    brokers = started_size(settings.kafka_home)
    cluster = local_kafka(settings, brokers)
    again = "`surveil kafka start`" + (f" --brokers {brokers}" if brokers > 1 else "")
    healthy = True
    for i, (status, answers) in enumerate(zip(cluster.status(), cluster.answers(), strict=True)):
        line = _status_line(status, answers, again)
        out.print(f"broker {i + 1}: {line}" if brokers > 1 else line)
        healthy = healthy and status.running and answers
    if not healthy:
        raise click.exceptions.Exit(1)


def _status_line(status: BrokerStatus, answers: bool, again: str) -> str:
    if status.running and answers:
        return f"running: pid {status.pid}, {status.bootstrap}, data in {status.home}"
    if status.running:
        return (
            f"not answering: pid {status.pid} runs but {status.bootstrap} does not answer "
            f"(logs in {status.home / 'logs'}); `surveil kafka stop` then {again}"
        )
    return f"not running (data in {status.home})"
