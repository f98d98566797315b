"""How central a ticker is to a document: the one relevance function of surveil."""

from __future__ import annotations

import re

from streams.records import Document


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
