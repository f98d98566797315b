"""The signals agent: a per-ticker window over event time, kept in a Faust table."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.errors import DecodeError
from streams.acks import batches, each
from streams.app import Pipeline
from streams.records import DocRef, Scored, Signal

log = logging.getLogger(__name__)

# The baseline needs this many documents before a z-score means anything.
MIN_BASELINE = 10
TOP_DOCS = 5


def empty_state() -> dict[str, Any]:
    """A ticker's state before its first document."""
    return {"docs": {}, "n": 0, "mean": 0.0, "m2": 0.0}


def advance(
    state: dict[str, Any], rec: Scored, window_s: int
) -> tuple[dict[str, Any], Signal | None]:
    """Add one scored document to a ticker's state; return the new state and its signal.

    The window ends at the newest publication time seen and reaches back ``window_s``.
    A document already in the window (a redelivery) or older than it changes nothing and
    gives no signal. The baseline (count, mean, M2 of every document's score, Welford)
    is taken before the new document joins it.
    """
    docs: dict[str, list[Any]] = dict(state.get("docs", {}))
    if rec.doc_id in docs:
        return state, None
    ts = rec.published_at.timestamp()
    end = max([ts, *(d[0] for d in docs.values())])
    start = end - window_s
    if ts < start:
        return state, None
    n, mean, m2 = int(state.get("n", 0)), float(state.get("mean", 0.0)), float(state.get("m2", 0.0))
    baseline = (n, mean, math.sqrt(m2 / (n - 1)) if n > 1 else 0.0)
    n += 1
    delta = rec.score - mean
    mean += delta / n
    m2 += delta * (rec.score - mean)
    docs[rec.doc_id] = [ts, rec.score, rec.label, rec.title, rec.url, rec.source, rec.event_type]
    docs = {k: v for k, v in docs.items() if v[0] >= start}
    new_state = {"docs": docs, "n": n, "mean": mean, "m2": m2}
    return new_state, _signal(rec, docs, start, end, baseline)


def _signal(
    rec: Scored,
    docs: dict[str, list[Any]],
    start: float,
    end: float,
    baseline: tuple[int, float, float],
) -> Signal:
    scores = [d[1] for d in docs.values()]
    count = len(scores)
    mean_score = sum(scores) / count
    base_n, base_mean, base_std = baseline
    zscore = None
    if base_n >= MIN_BASELINE and base_std > 0:
        zscore = (mean_score - base_mean) / (base_std / math.sqrt(count))
    events = Counter(d[6] for d in docs.values() if d[6] != "none")
    worst = sorted(docs.items(), key=lambda kv: (kv[1][1], -kv[1][0]))[:TOP_DOCS]
    return Signal(
        ticker=rec.ticker,
        window_start=datetime.fromtimestamp(start, UTC),
        window_end=datetime.fromtimestamp(end, UTC),
        documents=count,
        mean_score=mean_score,
        negative_share=sum(1 for d in docs.values() if d[2] == "negative") / count,
        zscore=zscore,
        top_events=tuple(e for e, _ in events.most_common(3)),
        worst=tuple(
            DocRef(
                doc_id=doc_id,
                title=d[3],
                url=d[4],
                source=d[5],
                published_at=datetime.fromtimestamp(d[0], UTC),
                score=d[1],
            )
            for doc_id, d in worst
        ),
        model_version=rec.model_version,
    )


def register(pipeline: Pipeline) -> Any:
    """Add the signals agent and its window table to the app."""
    app, topics, cfg, counters = pipeline.app, pipeline.topics, pipeline.config, pipeline.counters
    windows = app.Table("ticker_windows", default=empty_state, partitions=cfg.partitions)
    window = timedelta(seconds=cfg.signal_window_s)

    async def emit(signals: list[Signal]) -> None:
        sent = [await topics.signals.send(key=s.ticker, value=s.to_json()) for s in signals]
        await asyncio.gather(*sent)  # each future is done once the broker acknowledged

    async def signals(stream: Any) -> AsyncIterator[int]:
        async for events in batches(stream, cfg.classify_batch, cfg.classify_within):
            out: list[Signal] = []
            for event in each(events):
                try:
                    rec = Scored.parse(event.value)
                except DecodeError as err:
                    # docs.scored rejects are dead-lettered by the store agent; count them here.
                    counters.inc(f"signals.invalid.{err.reason}")
                    log.warning("signals: skipping invalid scored record: %s", err)
                    continue
                if rec.dup_of:
                    counters.inc("signals.near_duplicates")
                    continue
                state, signal = advance(windows[rec.ticker], rec, int(window.total_seconds()))
                if signal is None:
                    counters.inc("signals.unchanged")
                    continue
                windows[rec.ticker] = state
                out.append(signal)
            await pipeline.writes.call("signals", emit, out)
            counters.inc("signals.emitted", len(out))
            yield len(out)

    return app.agent(topics.scored, name="surveil.signals", concurrency=1)(signals)
