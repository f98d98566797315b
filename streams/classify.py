"""The classify agent: batches of docs.raw in, one docs.scored record per (document, ticker) out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from models.base import Classifier
from streams.acks import batches, with_where
from streams.app import Pipeline
from streams.records import Document, Rejected, Scored
from streams.steps import decode_indexed, score

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where the classify agent writes (docs.scored and docs.dlq in production)."""

    async def write(self, scored: Sequence[Scored], rejected: Sequence[Rejected]) -> None:
        """Write one batch's records; return once they are stored (e.g. the broker has them).

        It may be called again with the same records after a failure: repeats must be safe.
        """
        ...


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
            wheres = with_where(events)
            oks, rejected = decode_indexed(wheres, Document, "classify")
            docs, origins = [doc for _, doc in oks], [wheres[i][1] for i, _ in oks]
            for item in rejected:
                log.warning("docs.raw %s/%s: %s", item.partition, item.offset, item.detail)
                counters.inc(f"rejected.classify.{item.reason}")
            records = await loop.run_in_executor(
                pipeline.model_pool, score, classifier, docs, origins
            )
            # Retried until the broker has every record; acknowledged only after (streams.acks).
            await pipeline.writes.call("classify", out.write, records, rejected)
            counters.inc("classify.documents", len(docs))
            counters.inc("classify.scored", len(records))
            counters.inc("classify.untickered", sum(1 for d in docs if not d.tickers))
            yield len(docs)

    return pipeline.app.agent(topics.raw, name="surveil.classify", concurrency=1)(classify)
