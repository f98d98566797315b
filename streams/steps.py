"""The pipeline's steps, as plain functions: the agents, replay and the tests call these.

```
decode   topic values -> records (oks) and Rejected (errs), one policy for every stage
score    documents -> one Scored per (document, ticker), one model call a batch
store    records -> a `Sink` (ClickHouse `streams.store.Store`, a replay's run database,
         a test's list)
evaluate, route   `alerts.engine.AlertEngine.observe` and ``flush`` (alerts/ sits above)
```

The invalid-record policy: every consumer of a topic decodes with `decode`; its rejects are
counted by each stage (``rejected.<stage>.<reason>``) and dead-lettered by one consumer per
topic only (`DEAD_LETTERED_BY`), so docs.dlq gets each bad input once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from infra.errors import DecodeError
from models.base import Classifier, TextScore
from models.taxonomy import event_from_items
from streams.records import Alert, Document, Record, Rejected, Scored, utcnow
from streams.relevance import relevance
from streams.topics import ALERTS, DOCS_RAW, DOCS_SCORED

R = TypeVar("R", bound=Record)
PAYLOAD_CHARS = 65_536
# The one stage of each topic that sends its rejects to docs.dlq; the others count them.
DEAD_LETTERED_BY = {DOCS_RAW: "classify", DOCS_SCORED: "store_scores", ALERTS: "store_alerts"}


@dataclass(frozen=True)
class Where:
    """Where a value came from."""

    topic: str = ""
    partition: int | None = None
    offset: int | None = None


def decode(
    values: Iterable[tuple[Any, Where]], record: type[R], stage: str
) -> tuple[list[R], list[Rejected]]:
    """Parse topic values into records; return the records and a Rejected for each other."""
    oks, errs = decode_indexed(values, record, stage)
    return [ok for _, ok in oks], errs


def decode_indexed(
    values: Iterable[tuple[Any, Where]], record: type[R], stage: str
) -> tuple[list[tuple[int, R]], list[Rejected]]:
    """Like `decode`, with each record's place among the values (to find its event)."""
    oks: list[tuple[int, R]] = []
    errs: list[Rejected] = []
    for index, (value, where) in enumerate(values):
        try:
            oks.append((index, record.parse(value)))
        except DecodeError as err:
            payload = value if isinstance(value, str) else json.dumps(value, default=str)
            source = value.get("source", "") if isinstance(value, dict) else ""
            errs.append(
                Rejected(
                    reason=err.reason,
                    detail=err.detail,
                    stage=stage,
                    source=str(source),
                    payload=payload[:PAYLOAD_CHARS],
                    topic=where.topic,
                    partition=where.partition,
                    offset=where.offset,
                )
            )
    return oks, errs


def dead_letters(stage: str) -> bool:
    """Whether ``stage`` is the one that sends the rejects of its topic to docs.dlq."""
    return stage in DEAD_LETTERED_BY.values()


def score(
    classifier: Classifier, docs: Sequence[Document], origins: Sequence[Where] | None = None
) -> list[Scored]:
    """Score documents with one model call; return a record per (document, ticker).

    Args:
        origins: where each document was on docs.raw; each record then carries its
            document's partition and offset and its ticker's place (`streams.ledger`).
    """
    scores: list[TextScore] = classifier.classify([doc.text for doc in docs]) if docs else []
    scored_at = utcnow()
    wheres: Sequence[Where | None] = origins if origins is not None else [None] * len(docs)
    out = []
    for doc, s, where in zip(docs, scores, wheres, strict=True):
        event_type, event_prob = s.event_type, s.event_prob
        filed = event_from_items([str(i) for i in doc.meta.get("items", [])])
        if filed is not None:
            # A filing says what happened in its 8-K items: that beats any guess from text.
            event_type, event_prob = filed, 1.0
        out += [
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
                origin=_origin(where, index),
            )
            for index, ticker in enumerate(doc.tickers)
        ]
    return out


def _origin(where: Where | None, index: int) -> tuple[int, int, int] | None:
    if where is None or where.partition is None or where.offset is None:
        return None
    return where.partition, where.offset, index


class Sink(Protocol):
    """Where the pipeline's rows go. Each write may be repeated with the same records after a
    failure (a redelivery): repeats must store nothing twice."""

    def write_documents(self, docs: Sequence[Document]) -> int:
        """Store documents; return how many were new."""
        ...

    def write_scores(self, records: Sequence[Scored]) -> int:
        """Store (document, ticker) scores; return how many were new."""
        ...

    def write_alerts(self, alerts: Sequence[Alert]) -> int:
        """Store alert states; return how many were new."""
        ...
