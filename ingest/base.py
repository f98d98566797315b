"""The Source interface, and the result of one fetch: documents and rejects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from streams.records import Document, Rejected


@dataclass
class Batch:
    """What one fetch of a source produced: good documents and rejected inputs."""

    documents: list[Document] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Source(Protocol):
    """A place documents come from (a feed, an API, a file)."""

    name: str

    def fetch(self) -> Iterable[Document | Rejected]:
        """Fetch once and yield each document, or a `Rejected` for each bad input."""
        ...


def collect(source: Source) -> Batch:
    """Run one fetch of a source and split what it yields, documents oldest first.

    Feeds list the newest entry first; publishing in event-time order lets the per-ticker
    windows downstream see a story unfold as it did.
    """
    batch = Batch()
    for item in source.fetch():
        if isinstance(item, Document):
            batch.documents.append(item)
        else:
            batch.rejected.append(item)
    batch.documents.sort(key=lambda doc: doc.published_at)
    return batch
