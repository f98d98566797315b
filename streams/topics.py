"""Topic names of the pipeline, one per arrow of the architecture."""

from __future__ import annotations

DOCS_RAW = "docs.raw"
DOCS_SCORED = "docs.scored"
SIGNALS = "signals"
ALERTS = "alerts"
DOCS_DLQ = "docs.dlq"

ALL_TOPICS: tuple[str, ...] = (DOCS_RAW, DOCS_SCORED, SIGNALS, ALERTS, DOCS_DLQ)
