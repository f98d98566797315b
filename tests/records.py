"""Records for the tests: documents, scores and alerts with plain defaults, any field replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.records import Alert, Document, Label, Scored

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


def document(
    doc_id: str = "doc-00001",
    title: str = "",
    tickers: tuple[str, ...] = (),
    *,
    at: datetime = T0,
    **fields: Any,
) -> Document:
    """A news story from a wire, published and fetched at ``at``."""
    values: dict[str, Any] = {
        "doc_id": doc_id,
        "source": "wire",
        "kind": "news",
        "title": title,
        "published_at": at,
        "fetched_at": at,
        "tickers": tickers,
    }
    return Document(**(values | fields))


def label_of(score: float) -> Label:
    return "negative" if score < 0 else "positive" if score > 0 else "neutral"


def scored(doc_id: str, ticker: str, at: datetime, score: float, **fields: Any) -> Scored:
    """A news score published, fetched and scored at ``at``; label and probabilities follow it."""
    values: dict[str, Any] = {
        "doc_id": doc_id,
        "ticker": ticker,
        "kind": "news",
        "source": "wire",
        "published_at": at,
        "fetched_at": at,
        "label": label_of(score),
        "p_negative": max(0.0, -score),
        "p_neutral": 1 - abs(score),
        "p_positive": max(0.0, score),
        "score": score,
        "relevance": 1.0,
        "model_version": "m1",
        "scored_at": at,
    }
    return Scored(**(values | fields))


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
    """The window and rule tests' record: the ticker's document ``n``, ``at`` after T0."""
    return scored(
        f"doc-{ticker}-{n}",
        ticker,
        T0 + at,
        score,
        source=f"wire{n % 2}",
        title=f"title {n}",
        url=f"https://example.com/{n}",
        label=label or label_of(score),
        p_negative=0.2,
        p_neutral=0.6,
        p_positive=0.2,
        event_type=event,
        event_prob=prob,
        model_version="fixed-1",
        dup_of=dup_of,
    )


def alert(at: datetime = T0, **fields: Any) -> Alert:
    """An alert firing on ACME at ``at`` over the hour before it."""
    values: dict[str, Any] = {
        "alert_id": "a1",
        "fingerprint": "f" * 32,
        "rule": "mean_score_below",
        "severity": "warning",
        "ticker": "ACME",
        "fired_at": at,
        "value": -0.5,
        "threshold": -0.3,
        "window_start": at - timedelta(hours=1),
        "window_end": at,
        "documents": 3,
        "explanation": "x",
        "state": "firing",
    }
    return Alert(**(values | fields))
