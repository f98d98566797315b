"""The classify agent: batches of documents in, one scored record per (document, ticker) out."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from infra.errors import DecodeError
from models.base import Classifier, TextScore
from models.taxonomy import event_from_items
from streams.acks import batches
from streams.app import Pipeline
from streams.records import Document, Rejected, Scored, utcnow

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where the classify agent writes (docs.scored and docs.dlq in production)."""

    async def write(self, scored: Sequence[Scored], rejected: Sequence[Rejected]) -> None:
        """Write one batch's records; return once they are stored (e.g. the broker has them).

        It may be called again with the same records after a failure: repeats must be safe.
        """
        ...


def relevance(ticker: str, doc: Document) -> float:
    """How central a ticker is to a document: named in the title, the body, or only listed.

    The ingest linker's score (``meta["relevance"]``) wins when it has one for the ticker.
    """
    linked = doc.meta.get("relevance")
    if isinstance(linked, dict) and isinstance(linked.get(ticker), int | float):
        return min(1.0, max(0.0, float(linked[ticker])))
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(ticker)}(?![A-Za-z0-9])")
    if pattern.search(doc.title):
        return 1.0
    if pattern.search(doc.body):
        return 0.7
    return 0.5


def score_documents(classifier: Classifier, docs: Sequence[Document]) -> list[Scored]:
    """Score documents with one model call; return a record per (document, ticker)."""
    scores: list[TextScore] = classifier.classify([doc.text for doc in docs]) if docs else []
    scored_at = utcnow()
    out = []
    for doc, s in zip(docs, scores, strict=True):
        event_type, event_prob = s.event_type, s.event_prob
        filed = event_from_items([str(i) for i in doc.meta.get("items", [])])
        if filed is not None:
            # A filing says what happened in its 8-K items: that beats any guess from text.
            event_type, event_prob = filed, 1.0
        for ticker in doc.tickers:
            out.append(
                Scored(
                    doc_id=doc.doc_id,
                    ticker=ticker,
                    kind=doc.kind,
                    source=doc.source,
                    title=doc.title,
                    url=doc.url,
                    published_at=doc.published_at,
                    fetched_at=doc.fetched_at,
                    label=s.label,  # type: ignore[arg-type]
                    p_negative=s.probs[0],
                    p_neutral=s.probs[1],
                    p_positive=s.probs[2],
                    score=max(-1.0, min(1.0, s.score)),
                    event_type=event_type,
                    event_prob=event_prob,
                    relevance=relevance(ticker, doc),
                    model_version=classifier.version,
                    scored_at=scored_at,
                    dup_of=doc.dup_of,
                )
            )
    return out


def parse_event(value: Any, stage: str, where: dict[str, Any]) -> Document | Rejected:
    """Turn one docs.raw value into a Document, or a Rejected saying why not."""
    try:
        return Document.parse(value)
    except DecodeError as err:
        payload = json.dumps(value, default=str)[:65_536] if not isinstance(value, str) else value
        source = value.get("source", "") if isinstance(value, dict) else ""
        return Rejected(
            reason=err.reason,
            detail=err.detail,
            stage=stage,
            source=str(source),
            payload=payload,
            **where,
        )


def register(pipeline: Pipeline, classifier: Classifier, outputs: Outputs | None = None) -> Any:
    """Add the classify agent to the pipeline's app and return it.

    Args:
        classifier: the model; it runs in the pipeline's model thread, never on the loop.
        outputs: where records go; docs.scored (keyed by ticker) and docs.dlq when None.
    """
    topics, cfg, counters = pipeline.topics, pipeline.config, pipeline.counters

    class _TopicOutputs:
        async def write(self, scored: Sequence[Scored], rejected: Sequence[Rejected]) -> None:
            sent = [await topics.scored.send(key=r.ticker, value=r.to_json()) for r in scored]
            sent += [await pipeline.reject(r) for r in rejected]
            await asyncio.gather(*sent)  # each future is done once the broker acknowledged

    out: Outputs = outputs or _TopicOutputs()

    async def classify(stream: Any) -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        async for events in batches(stream, cfg.classify_batch, cfg.classify_within):
            docs: list[Document] = []
            rejected: list[Rejected] = []
            for event in events:
                msg = event.message
                where = {"topic": msg.topic or "", "partition": msg.partition, "offset": msg.offset}
                item = parse_event(event.value, "classify", where)
                if isinstance(item, Rejected):
                    log.warning("docs.raw %s/%s: %s", msg.partition, msg.offset, item.detail)
                    counters.inc(f"rejected.classify.{item.reason}")
                    rejected.append(item)
                else:
                    docs.append(item)
            records = await loop.run_in_executor(
                pipeline.model_pool, score_documents, classifier, docs
            )
            # Retried until the broker has every record; acknowledged only after (streams.acks).
            await pipeline.writes.call("classify", out.write, records, rejected)
            counters.inc("classify.documents", len(docs))
            counters.inc("classify.scored", len(records))
            counters.inc("classify.untickered", sum(1 for d in docs if not d.tickers))
            yield len(docs)

    return pipeline.app.agent(topics.raw, name="surveil.classify", concurrency=1)(classify)
