"""A list sink: the pipeline's rows kept in memory, once each, as `streams.store.Store` keeps
them in ClickHouse (the `streams.steps.Sink` a test runs the steps into)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from streams.records import Alert, Document, Scored

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class ListSink:
    """Keep documents by doc_id, scores by (doc_id, ticker), alerts by (alert_id, state)."""

    documents: dict[str, Document] = field(default_factory=dict)
    scores: dict[tuple[str, str], Scored] = field(default_factory=dict)
    alerts: dict[tuple[str, str], Alert] = field(default_factory=dict)

    def write_documents(self, docs: Sequence[Document]) -> int:
        """Keep the documents not kept yet; return how many were new."""
        return _keep(self.documents, {d.doc_id: d for d in docs})

    def write_scores(self, records: Sequence[Scored]) -> int:
        """Keep the (document, ticker) scores not kept yet; return how many were new."""
        return _keep(self.scores, {(r.doc_id, r.ticker): r for r in records})

    def write_alerts(self, alerts: Sequence[Alert]) -> int:
        """Keep the alert states (firing, resolved) not kept yet; return how many were new."""
        batch: dict[tuple[str, str], Alert] = {(a.alert_id, a.state): a for a in alerts}
        return _keep(self.alerts, batch)


def _keep(kept: dict[K, V], batch: dict[K, V]) -> int:
    fresh = {k: v for k, v in batch.items() if k not in kept}
    kept.update(fresh)
    return len(fresh)
