"""Compose and run the Faust worker: classify, store and alerts agents, by role."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import faust
from pydantic import SecretStr

from alerts import agent as alerts_agent
from alerts import audit
from alerts.base import Notifier
from alerts.deliverer import Deliverer
from alerts.email import SmtpNotifier
from alerts.engine import AlertEngine
from alerts.outbox import Outbox
from alerts.slack import SlackBot, SlackWebhook
from infra.broker import HOST, port_free
from infra.errors import ConfigError
from infra.redact import Redactor, dump_stacks
from infra.redact import install as install_redaction
from infra.settings import Settings
from infra.topics import ensure_topics
from streams import classify, store
from streams.app import Pipeline, create_pipeline
from streams.records import utcnow
from streams.topics import ALL_TOPICS, with_prefix
from surveil.compose.runtime import (
    alert_ruleset,
    load_model,
    open_warehouse,
    outbox_path,
    worker_config,
)
from surveil.quant import server

log = logging.getLogger(__name__)


def build(settings: Settings) -> Pipeline:
    """Build the pipeline with the agents of the worker's role.

    Role ``all`` and ``store`` open (and own) ClickHouse; ``classify`` never does.
    """
    pipeline = create_pipeline(worker_config(settings))
    role = settings.worker_role
    version = "-"
    if role in ("all", "classify"):
        classifier = load_model(settings)
        classify.register(pipeline, classifier)
        version = classifier.version
    rules, notifiers = 0, "-"
    if role in ("all", "store"):
        engine = _store_and_alerts(pipeline, settings)
        rules, notifiers = len(engine.ruleset.rules), ", ".join(engine.channels) or "none"
    log.info(
        "worker built: role %s, model %s, %d rule(s), notifiers: %s",
        role,
        version,
        rules,
        notifiers,
    )
    return pipeline


def _store_and_alerts(pipeline: Pipeline, settings: Settings) -> AlertEngine:
    """Register the store agents, the query endpoint and the alerts agent; return its engine."""
    warehouse = open_warehouse(settings)
    store.register(pipeline, store.Store(warehouse))
    server.register(pipeline, warehouse, settings)  # quants read while we own chDB
    notifiers = _notifiers(settings)
    outbox_path(settings).parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(
        outbox_path(settings),
        cap=settings.alert_retry_max_s,
        give_up_after=settings.alert_give_up_after_s,
    )
    deliverer = Deliverer(
        outbox,
        notifiers,
        counters=pipeline.counters,
        late_after=settings.alert_late_after_s,
        fallback=settings.alert_fallback_channel or None,
    )
    engine = AlertEngine(
        alert_ruleset(settings),
        outbox,
        list(notifiers),
        settings.state_dir / "alerts" / "router.json",  # older versions' state, imported once
        pipeline.counters,
        on_put=deliverer.wake,
    )
    alerts_agent.register(pipeline, engine)
    keep = timedelta(days=settings.alert_outbox_days)
    alerts_agent.register_audit(
        pipeline,
        partial(audit.sync, outbox, warehouse),
        lambda: audit.prune(outbox, warehouse, utcnow() - keep),
    )
    deliverer.start()

    async def stop_delivering(*_: Any, **__: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, deliverer.stop)
        outbox.close()

    pipeline.app.on_before_shutdown.connect(stop_delivering)
    return engine


def _notifiers(settings: Settings) -> dict[str, Notifier]:
    """The channels the settings configure, by name (the outbox owns retries)."""
    notifiers: dict[str, Notifier] = {}
    if settings.alert_slack_webhook is not None:
        notifiers["slack"] = SlackWebhook(settings.alert_slack_webhook.get_secret_value())
    elif settings.alert_slack_bot_token is not None:
        token = settings.alert_slack_bot_token.get_secret_value()
        notifiers["slack"] = SlackBot(token, settings.alert_slack_channel)
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        notifiers["email"] = SmtpNotifier(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            [r.strip() for r in settings.smtp_to.split(",") if r.strip()],
            username=settings.smtp_user,
            password=password,
            starttls=settings.smtp_starttls,
            ssl=settings.smtp_ssl,
        )
    return notifiers


def changelog_topics(pipeline: Pipeline) -> list[str]:
    """The changelog topics of the pipeline's Faust tables."""
    return [table.changelog_topic_name for table in pipeline.app.tables.values()]


def run(settings: Settings) -> None:
    """Create the topics if missing, then run the worker until SIGTERM or Ctrl-C.

    Raises:
        ConfigError: another worker runs on the state folder, or the web port is taken.
    """
    install_redaction(Redactor(secrets(settings)))  # before Faust sets up logging
    lock = claim_state_dir(settings.state_dir)
    try:
        _run(settings)
    finally:
        os.close(lock)


def claim_state_dir(state_dir: Path) -> int:
    """Lock the state folder for this process (its pid in ``worker.pid``); return the fd.

    The lock is taken before chDB, RocksDB and the outbox are opened, so a second worker
    says who holds the folder instead of failing deep inside one of them; the kernel
    releases it when the process ends, however it ends.

    Raises:
        ConfigError: another process holds the folder.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "worker.pid"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", errors="replace").strip() or "unknown"
        os.close(fd)
        msg = (
            f"a worker, pid {holder}, already runs on {state_dir.resolve()}: stop it first, "
            "or give this one its own --state-dir (SURVEIL_STATE_DIR)"
        )
        raise ConfigError(msg) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return fd


def _run(settings: Settings) -> None:
    if not port_free(settings.web_port):
        msg = (
            f"port {settings.web_port} on {HOST} is in use (another worker?): give this "
            "worker another with --web-port (SURVEIL_WEB_PORT)"
        )
        raise ConfigError(msg)
    topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
    ensure_topics(settings.bootstrap_servers, topics, settings.kafka_partitions)
    pipeline = build(settings)
    # Faust would create the changelogs itself while joining the group, and a topic that
    # young has no leader yet: the consumer's metadata then counts 0 partitions for it and
    # the first table write fails with PartitionsMismatch. Made here, with leaders awaited,
    # they are whole before the worker joins.
    ensure_topics(
        settings.bootstrap_servers,
        changelog_topics(pipeline),
        settings.kafka_partitions,
        configs={"cleanup.policy": "compact"},
    )
    worker = _Worker(pipeline.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


def secrets(settings: Settings) -> list[str]:
    """The secret values of the settings, to mask in logs and stack dumps."""
    values = [getattr(settings, name) for name in type(settings).model_fields]
    return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]


class _Worker(faust.Worker):  # Faust is untyped
    """Faust's worker, with a SIGUSR1 stack dump that prints no local variables (mode's
    printed every frame's locals, settings and Slack webhook URL included)."""

    async def _cry(self) -> None:
        dump_stacks(self.stderr, self.loop)
