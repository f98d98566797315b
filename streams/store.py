"""The store agents: documents, scores and alerts into ClickHouse, each row once."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa
from faust.types import TP

from infra.db import Warehouse
from streams.acks import batches, with_where
from streams.app import Pipeline
from streams.ledger import Chunk, ClickHouseRanges, Ledger, Range
from streams.records import Alert, Document, Record, Rejected, Scored
from streams.steps import dead_letters, decode, decode_indexed

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
# The scores as Arrow columns (`score_table`). DateTime64(3, 'UTC') takes milliseconds, cut
# as the Native encoding cuts them; LowCardinality columns take plain strings.
_MS = pa.timestamp("ms", tz="UTC")
SCORE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("ticker", pa.string()),
        ("kind", pa.string()),
        ("source", pa.string()),
        ("published_at", _MS),
        ("fetched_at", _MS),
        ("label", pa.string()),
        ("p_negative", pa.float32()),
        ("p_neutral", pa.float32()),
        ("p_positive", pa.float32()),
        ("score", pa.float32()),
        ("event_type", pa.string()),
        ("event_prob", pa.float32()),
        ("relevance", pa.float32()),
        ("model_version", pa.string()),
        ("scored_at", _MS),
    ]
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


def document_row(d: Document) -> list[Any]:
    """Return a document as a row of ``documents`` (DOCUMENT_COLUMNS)."""
    return [
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


def score_table(records: Sequence[Scored]) -> pa.Table:
    """Return scores as an Arrow table of ``scores`` (SCORE_SCHEMA), built column by column
    from the records' fields (an attribute read of a pydantic model costs several times a
    dict lookup, and the store does one per value)."""
    fields = [vars(r) for r in records]
    return pa.table(
        [
            pa.array([f[c] for f in fields], type=t)
            for c, t in zip(SCORE_COLUMNS, SCORE_SCHEMA.types, strict=True)
        ],
        schema=SCORE_SCHEMA,
    )


def alert_row(a: Alert) -> list[Any]:
    """Return an alert state as a row of ``alerts`` (ALERT_COLUMNS)."""
    return [
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


class Store:
    """The pipeline's writes into ClickHouse.

    From Kafka (the store agents), documents and scores go in exactly once by the range they
    came from (`insert_chunk`, `streams.ledger`): nothing is read first. The `Sink` methods
    serve writers without offsets (a replay's run database, tests, alert states): they skip
    the rows already stored with a query before the insert.

    Calls block; the agents run them in the pipeline's store thread.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def insert_documents(self, chunk: Chunk[Document]) -> int:
        """Insert one range of docs.raw under its token; return the rows sent."""
        rows = [document_row(d) for d in chunk.records]
        return self.warehouse.insert("documents", rows, DOCUMENT_COLUMNS, chunk.span.token)

    def insert_scores(self, chunk: Chunk[Scored]) -> int:
        """Insert one range of docs.scored under its token; return the rows sent."""
        return self.warehouse.insert_arrow("scores", score_table(chunk.records), chunk.span.token)

    def write_documents(self, docs: Sequence[Document]) -> int:
        """Insert documents not stored yet; return how many were new."""
        fresh = list({d.doc_id: d for d in docs}.values())
        stored = self._existing("documents", [d.doc_id for d in fresh])
        rows = [document_row(d) for d in fresh if (d.doc_id,) not in stored]
        return self.warehouse.insert("documents", rows, DOCUMENT_COLUMNS)

    def write_scores(self, records: Sequence[Scored]) -> int:
        """Insert (document, ticker) scores not stored yet; return how many were new."""
        fresh = list({(r.doc_id, r.ticker): r for r in records}.values())
        stored = self._stored_scores(fresh)
        new = [r for r in fresh if (r.doc_id, r.ticker) not in stored]
        return self.warehouse.insert_arrow("scores", score_table(new))

    def write_alerts(self, alerts: Sequence[Alert]) -> int:
        """Insert alert states not stored yet (firing, then resolved); return how many."""
        fresh = list({(a.alert_id, a.state): a for a in alerts}.values())
        stored = self._existing("alerts", [a.alert_id for a in fresh], ("alert_id", "state"))
        rows = [alert_row(a) for a in fresh if (a.alert_id, a.state) not in stored]
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
    topics, cfg = pipeline.topics, pipeline.config
    ranges = ClickHouseRanges(store.warehouse)

    def ledger(target: str, key: Callable[[Any], Hashable], **kw: Any) -> Ledger[Any]:
        return Ledger(
            target, ranges, cfg.store_insert_rows, cfg.store_within, key, fresh=fresh, **kw
        )

    def fresh(span: Range) -> bool:
        end = pipeline.app.consumer.highwater(TP(span.topic, span.partition))
        return end is None or end < 0 or span.last < end

    documents: Ledger[Document] = ledger("documents", lambda d: d.doc_id)
    scores: Ledger[Scored] = ledger(
        "scores", lambda r: (r.doc_id, r.ticker), origin=lambda r: r.origin
    )

    async def on_revoked(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Sent with the revoked partitions after Faust waited for every taken event's ack
        # (ours flush by age).
        revoked: set[TP] = args[0]
        for book in (documents, scores):
            book.forget((tp.topic, tp.partition) for tp in revoked)

    pipeline.app.on_partitions_revoked.connect(on_revoked)

    return [
        _ledger_agent(
            pipeline, topics.raw, "documents", Document, documents, store.insert_documents
        ),
        _ledger_agent(pipeline, topics.scored, "scores", Scored, scores, store.insert_scores),
        _store_agent(pipeline, topics.alerts, "alerts", Alert, store.write_alerts),
    ]


def _ledger_agent(
    pipeline: Pipeline,
    topic: Any,
    name: str,
    record: type[R],
    ledger: Ledger[R],
    insert: Callable[[Chunk[R]], int],
) -> Any:
    """An agent that stores its topic exactly once: records wait in the ledger until their
    range is inserted (full, or ``store_within`` old), and are acknowledged only then."""
    cfg, counters = pipeline.config, pipeline.counters
    stage = f"store_{name}"
    lock = asyncio.Lock()  # the agent and its flusher take turns with the ledger

    async def write(flush: bool) -> int:
        loop = asyncio.get_running_loop()
        due = partial(ledger.write, insert, time.monotonic(), flush)
        inserted: int = await loop.run_in_executor(pipeline.store_pool, due)
        return inserted

    async def settle(stream: Any, flush: bool) -> None:
        async with lock:
            try:
                # Retried until written (streams.acks); acknowledged only after.
                inserted = await pipeline.writes.call(stage, write, flush)
            finally:
                acked = ledger.take_acked()
                for event in acked:
                    await stream.ack(event)
            counters.inc(f"store.{name}.inserted", inserted)
            counters.inc(f"store.{name}.duplicates", len(acked) - inserted)
            counters.inc(f"store.{name}.seen", len(acked))

    async def flusher(stream: Any) -> None:
        while True:
            await asyncio.sleep(cfg.store_within)
            if ledger.pending():
                await settle(stream, flush=False)

    async def dead_letter(rejects: list[Rejected]) -> None:
        await asyncio.gather(*[await pipeline.reject(r) for r in rejects])

    async def store(stream: Any) -> AsyncIterator[int]:
        timer = asyncio.ensure_future(flusher(stream))
        try:
            async for events in stream.noack_take(cfg.store_batch, within=cfg.store_within):
                wheres = with_where(events)
                oks, rejects = decode_indexed(wheres, record, stage)
                for item in rejects:
                    counters.inc(f"rejected.{stage}.{item.reason}")
                if rejects and dead_letters(stage):
                    await pipeline.writes.call(f"{stage}_dlq", dead_letter, rejects)
                taken = {i for i, _ in oks}
                for i, event in enumerate(events):
                    if i not in taken:  # rejected: dead-lettered (or counted) above
                        await stream.ack(event)
                counters.inc(f"store.{name}.seen", len(events) - len(taken))
                async with lock:
                    ledger.add(((wheres[i][1], ok, events[i]) for i, ok in oks), time.monotonic())
                await settle(stream, flush=False)
                yield len(oks)
        finally:
            timer.cancel()

    return pipeline.app.agent(topic, name=f"surveil.{stage}", concurrency=1)(store)


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
