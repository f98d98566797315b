"""One parse for the parser tests: bytes in, documents and rejects out."""

from __future__ import annotations

from datetime import datetime

from ingest.base import Source
from streams.records import Document, Rejected, utcnow


def parse_all(
    source: Source, raw: bytes, fetched_at: datetime | None = None
) -> tuple[list[Document], list[Rejected]]:
    """Parse bytes fetched at ``fetched_at`` (now by default) into documents and rejects."""
    out = list(source.parse(raw, fetched_at or utcnow()))
    docs = [item for item in out if isinstance(item, Document)]
    rejected = [item for item in out if isinstance(item, Rejected)]
    assert len(docs) + len(rejected) == len(out)
    return docs, rejected
