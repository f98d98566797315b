"""Compose and run the Faust worker: classify, store, signals and alerts agents."""

from __future__ import annotations

import logging

import faust

from alerts import agent as alerts_agent
from alerts.base import Notifier
from alerts.rules import ThresholdRule
from alerts.slack import SlackWebhook
from infra.broker import ensure_topics
from infra.settings import Settings
from models.registry import Runtime, load_classifier
from streams import classify, signals, store
from streams.app import Pipeline, create_pipeline
from streams.topics import ALL_TOPICS, with_prefix
from surveil import endpoint
from surveil.runtime import open_warehouse, worker_config

log = logging.getLogger(__name__)


def build(settings: Settings) -> Pipeline:
    """Build the pipeline with every agent registered; opens (and owns) ClickHouse."""
    warehouse = open_warehouse(settings)
    classifier = load_classifier(
        settings.model,
        Runtime(
            device=settings.device,
            threads=settings.threads,
            precision=settings.precision,
            max_batch=settings.classify_batch,
        ),
    )
    pipeline = create_pipeline(worker_config(settings))
    classify.register(pipeline, classifier)
    store.register(pipeline, store.Store(warehouse))
    endpoint.register(pipeline, warehouse, settings.dsn)  # quants read while we own chDB
    signals.register(pipeline)
    notifiers: list[Notifier] = []
    if settings.alert_slack_webhook is not None:
        notifiers.append(SlackWebhook(settings.alert_slack_webhook.get_secret_value(), retries=2))
    rules = [ThresholdRule(threshold=settings.alert_threshold, min_docs=settings.alert_min_docs)]
    alerts_agent.register(pipeline, rules, notifiers)
    log.info("worker built: model %s, %d notifier(s)", classifier.version, len(notifiers))
    return pipeline


def run(settings: Settings) -> None:
    """Create the topics if missing, then run the worker until SIGTERM or Ctrl-C."""
    topics = with_prefix(settings.topic_prefix, ALL_TOPICS)
    ensure_topics(settings.bootstrap_servers, topics, settings.kafka_partitions)
    pipeline = build(settings)
    worker = faust.Worker(pipeline.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
