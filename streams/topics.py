"""Topic names of the pipeline, one per arrow of the architecture.

A prefix gives a whole pipeline its own namespace on a shared cluster (a replay run,
a test): ``with_prefix("run1.")`` names ``run1.docs.raw`` and so on.
"""

from __future__ import annotations

DOCS_RAW = "docs.raw"
DOCS_SCORED = "docs.scored"
ALERTS = "alerts"
DOCS_DLQ = "docs.dlq"

ALL_TOPICS: tuple[str, ...] = (DOCS_RAW, DOCS_SCORED, ALERTS, DOCS_DLQ)


def with_prefix(prefix: str, names: tuple[str, ...] = ALL_TOPICS) -> tuple[str, ...]:
    """Return the topic names in a namespace."""
    return tuple(f"{prefix}{name}" for name in names)
