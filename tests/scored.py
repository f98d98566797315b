"""Scored records for the window and rule tests: a ticker's documents, a few fields each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import Label, Scored

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


def doc(
    n: int,
    at: timedelta,
    score: float,
    *,
    label: Label | None = None,
    ticker: str = "ACME",
    event: str = "none",
    prob: float = 0.0,
    dup_of: str | None = None,
) -> Scored:
    when = T0 + at
    return Scored(
        doc_id=f"doc-{ticker}-{n}",
        ticker=ticker,
        kind="news",
        source=f"wire{n % 2}",
        title=f"title {n}",
        url=f"https://example.com/{n}",
        published_at=when,
        fetched_at=when,
        label=label or ("negative" if score < 0 else "positive" if score > 0 else "neutral"),
        p_negative=0.2,
        p_neutral=0.6,
        p_positive=0.2,
        score=score,
        event_type=event,
        event_prob=prob,
        relevance=1.0,
        model_version="fixed-1",
        scored_at=when,
        dup_of=dup_of,
    )
