"""The store agents: documents, scores and alerts into ClickHouse, each row once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from infra.db import Warehouse
from streams.acks import batches, with_where
from streams.app import Pipeline
from streams.records import Alert, Document, Record, Rejected, Scored
from streams.steps import dead_letters, decode

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Record)

DOCUMENT_COLUMNS = (
    "doc_id",
    "source",
    "kind",
    "url",
    "title",
    "body",
    "tickers",
    "language",
    "meta",
    "dup_of",
    "published_at",
    "fetched_at",
)
SCORE_COLUMNS = (
    "doc_id",
    "ticker",
    "kind",
    "source",
    "published_at",
    "fetched_at",
    "label",
    "p_negative",
    "p_neutral",
    "p_positive",
    "score",
    "event_type",
    "event_prob",
    "relevance",
    "model_version",
    "scored_at",
)
ALERT_COLUMNS = (
    "alert_id",
    "fingerprint",
    "rule",
    "severity",
    "ticker",
    "state",
    "fired_at",
    "resolved_at",
    "value",
    "threshold",
    "window_start",
    "window_end",
    "documents",
    "explanation",
    "evidence",
    "deliveries",
)


class Store:
    """Idempotent writers: rows already stored are skipped before the insert, so a
    redelivered batch neither duplicates rows nor feeds the rollup view twice.

    Calls block; the agents run them in the pipeline's store thread.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def write_documents(self, docs: Sequence[Document]) -> int:
        """Insert documents not stored yet; return how many were new."""
        fresh = list({d.doc_id: d for d in docs}.values())
        stored = self._existing("documents", [d.doc_id for d in fresh])
        rows = [
            [
                d.doc_id,
                d.source,
                d.kind,
                d.url,
                d.title,
                d.body,
                list(d.tickers),
                d.language,
                json.dumps(d.meta, default=str),
                d.dup_of,
                d.published_at,
                d.fetched_at,
            ]
            for d in fresh
            if (d.doc_id,) not in stored
        ]
        return self.warehouse.insert("documents", rows, DOCUMENT_COLUMNS)

    def write_scores(self, records: Sequence[Scored]) -> int:
        """Insert (document, ticker) scores not stored yet; return how many were new."""
        fresh = list({(r.doc_id, r.ticker): r for r in records}.values())
        stored = self._stored_scores(fresh)
        rows = [
            [getattr(r, column) for column in SCORE_COLUMNS]
            for r in fresh
            if (r.doc_id, r.ticker) not in stored
        ]
        return self.warehouse.insert("scores", rows, SCORE_COLUMNS)

    def write_alerts(self, alerts: Sequence[Alert]) -> int:
        """Insert alert states not stored yet (firing, then resolved); return how many."""
        fresh = list({(a.alert_id, a.state): a for a in alerts}.values())
        stored = self._existing("alerts", [a.alert_id for a in fresh], ("alert_id", "state"))
        rows = [
            [
                a.alert_id,
                a.fingerprint,
                a.rule,
                a.severity,
                a.ticker,
                a.state,
                a.fired_at,
                a.resolved_at,
                a.value,
                a.threshold,
                a.window_start,
                a.window_end,
                a.documents,
                a.explanation,
                json.dumps([e.to_json() for e in a.evidence]),
                json.dumps([d.to_json() for d in a.deliveries]),
            ]
            for a in fresh
            if (a.alert_id, a.state) not in stored
        ]
        return self.warehouse.insert("alerts", rows, ALERT_COLUMNS)

    def _stored_scores(self, fresh: Sequence[Scored]) -> set[tuple[Any, ...]]:
        """The (doc_id, ticker) pairs of a batch already stored.

        The sort key is (ticker, published_at, doc_id): bounding the lookup by the batch's
        tickers and publication times lets ClickHouse skip all but a few granules, where
        a lookup by doc_id alone reads the whole table. A redelivered pair has the same
        ticker and publication time, so the bounds never hide one.
        """
        if not fresh:
            return set()
        times = [r.published_at for r in fresh]
        sql = (
            f"SELECT DISTINCT doc_id, ticker FROM {self.warehouse.database}.scores "  # noqa: S608
            "WHERE ticker IN {tickers:Array(String)} "
            "AND published_at BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} "
            "AND doc_id IN {ids:Array(String)}"
        )
        params = {
            "tickers": sorted({r.ticker for r in fresh}),
            "lo": min(times),
            "hi": max(times),
            "ids": sorted({r.doc_id for r in fresh}),
        }
        return set(self.warehouse.rows(sql, params))

    def _existing(
        self, table: str, ids: list[str], columns: Sequence[str] = ("doc_id",)
    ) -> set[tuple[Any, ...]]:
        if not ids:
            return set()
        key = columns[0]
        # Table and column names are ours, never input; the ids are bound parameters.
        names = ", ".join(columns)
        source = f"{self.warehouse.database}.{table}"
        sql = f"SELECT DISTINCT {names} FROM {source} WHERE {key} IN {{ids:Array(String)}}"  # noqa: S608
        return set(self.warehouse.rows(sql, {"ids": ids}))


def register(pipeline: Pipeline, store: Store) -> list[Any]:
    """Add the three store agents (documents, scores, alerts) to the app."""
    topics = pipeline.topics
    agents = [
        _store_agent(pipeline, topics.raw, "documents", Document, store.write_documents),
        _store_agent(pipeline, topics.scored, "scores", Scored, store.write_scores),
        _store_agent(pipeline, topics.alerts, "alerts", Alert, store.write_alerts),
    ]
    return agents


def _store_agent(
    pipeline: Pipeline, topic: Any, name: str, record: type[R], write: Callable[[Sequence[R]], int]
) -> Any:
    cfg, counters = pipeline.config, pipeline.counters
    stage = f"store_{name}"

    async def insert(records: list[R]) -> int:
        loop = asyncio.get_running_loop()
        inserted: int = await loop.run_in_executor(pipeline.store_pool, write, records)
        return inserted

    async def dead_letter(rejects: list[Rejected]) -> None:
        await asyncio.gather(*[await pipeline.reject(r) for r in rejects])

    async def store(stream: Any) -> AsyncIterator[int]:
        async for events in batches(stream, cfg.store_batch, cfg.store_within):
            records, rejects = decode(with_where(events), record, stage)
            for item in rejects:
                counters.inc(f"rejected.{stage}.{item.reason}")
            rejects = rejects if dead_letters(stage) else []
            # Retried until written; the batch is acknowledged only after (streams.acks).
            inserted = await pipeline.writes.call(stage, insert, records)
            if rejects:
                await pipeline.writes.call(f"{stage}_dlq", dead_letter, rejects)
            counters.inc(f"store.{name}.inserted", inserted)
            counters.inc(f"store.{name}.duplicates", len(records) - inserted)
            counters.inc(f"store.{name}.seen", len(events))
            yield inserted

    return pipeline.app.agent(topic, name=f"surveil.{stage}", concurrency=1)(store)
