"""The Faust app: settings, topics, and where the agents hang."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from mode import CrashingSupervisor

from infra.web import foreign
from streams.acks import Writes
from streams.counters import Counters
from streams.ordered import InOrderTransport
from streams.records import Rejected
from streams.topics import ALERTS, DOCS_DLQ, DOCS_RAW, DOCS_SCORED


@dataclass(frozen=True)
class WorkerConfig:
    """What the Faust app needs to know; built by the CLI from the settings."""

    app_id: str = "surveil"
    topic_prefix: str = ""
    broker: str = "kafka://127.0.0.1:9092"
    partitions: int = 3
    # Replicas of the topics Faust creates (the assignor's leader topic, changelogs it makes
    # itself): the cluster's, so that a lost broker takes none of their partitions down.
    replication: int = 1
    data_dir: Path = Path("var/faust")
    web_port: int = 6066
    store: str = "rocksdb://"
    classify_batch: int = 64
    classify_within: float = 0.5
    store_batch: int = 500
    store_insert_rows: int = 5000
    store_within: float = 0.5
    # Short group timeouts let a worker join in seconds, not the 30 s default.
    session_timeout_s: float = 10.0
    heartbeat_s: float = 2.0
    rebalance_timeout_s: float = 20.0


@dataclass
class Topics:
    """The pipeline's topics as Faust sees them (JSON values, no value_type)."""

    raw: Any
    scored: Any
    alerts: Any
    dlq: Any


@dataclass
class Pipeline:
    """The app with its topics, counters and the thread pools that keep blocking work off
    the event loop: one thread for the model, one for ClickHouse (chDB is not shared)."""

    app: faust.App
    config: WorkerConfig
    topics: Topics
    counters: Counters = field(default_factory=Counters)
    writes: Writes = field(init=False)
    model_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="model")
    )
    store_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="store")
    )

    def __post_init__(self) -> None:
        self.writes = Writes(self.counters)

    async def reject(self, record: Rejected) -> Any:
        """Send a rejected input to docs.dlq (the caller counts it); return the send's future,
        done once the broker has it."""
        return await self.topics.dlq.send(
            key=f"{record.stage}:{record.source}", value=record.to_json()
        )


class PipelineApp(faust.App):  # Faust's classes are untyped
    """A Faust app whose consumer delivers the pipeline's topics in order, none skipped
    (`streams.ordered`)."""

    in_order_topics: frozenset[str] = frozenset()

    def _new_transport(self) -> Any:
        return InOrderTransport(self.conf.broker_consumer, self)


def create_pipeline(config: WorkerConfig) -> Pipeline:
    """Create the Faust app and its topics; agents are added by each package's ``register``."""
    app = PipelineApp(
        config.app_id,
        broker=config.broker,
        value_serializer="json",
        key_serializer="raw",
        store=config.store,
        datadir=str(config.data_dir),
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=config.web_port,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=config.heartbeat_s,
        broker_rebalance_timeout=config.rebalance_timeout_s,
        producer_acks=-1,
        table_cleanup_interval=60.0,
        # An agent that raises would be restarted with its batch unacknowledged, which holds
        # back its partition's commits for good: stop the worker instead (exit code 1), so a
        # restart redelivers the batch.
        agent_supervisor=CrashingSupervisor,
    )

    def topic(name: str) -> Any:
        return app.topic(
            f"{config.topic_prefix}{name}", partitions=config.partitions, internal=False
        )

    app.in_order_topics = frozenset(
        f"{config.topic_prefix}{name}" for name in (DOCS_RAW, DOCS_SCORED, ALERTS)
    )
    topics = Topics(
        raw=topic(DOCS_RAW),
        scored=topic(DOCS_SCORED),
        alerts=topic(ALERTS),
        dlq=topic(DOCS_DLQ),
    )
    pipeline = Pipeline(app=app, config=config, topics=topics)

    @app.page("/surveil/stats/")
    async def stats(web: Any, request: Any) -> Any:
        if (reason := foreign(request.headers)) is not None:
            return web.json({"error": reason}, status=403)
        # The stages' states ride along as 0/1 gauges; /surveil/agents/ has their errors.
        stalled = {
            f"stage.{name}.stalled": int(stage["state"] == "stalled")
            for name, stage in pipeline.writes.snapshot().items()
        }
        return web.json({**pipeline.counters.snapshot(), **stalled})

    @app.page("/surveil/agents/")
    async def agents(web: Any, request: Any) -> Any:
        if (reason := foreign(request.headers)) is not None:
            return web.json({"error": reason}, status=403)
        return web.json({"stages": pipeline.writes.snapshot()})

    return pipeline
