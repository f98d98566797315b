"""Evaluate a rule set on one ticker's scored documents, in event time, into conditions.

A ticker's state is a JSON-ready dict (it lives in a Faust table keyed by ticker)::

    {"end": newest publication time seen (epoch s), "since": oldest one seen,
     "docs": {doc_id: [published, score, label, event_type, event_prob, title, url, source]},
     "buckets": [[start, n, sum, sum_sq, negatives], ...],
     "active": {rule: publication time of the document that made it active}}

``docs`` holds the documents within the longest rule window; older ones fold into
``buckets``, the trailing baseline of shock and negative_spike rules, which is kept only as
far back as the longest window plus baseline reaches.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, NamedTuple

from alerts.conditions import Condition
from alerts.ruleset import (
    EventSpec,
    NegativeSpikeSpec,
    Rule,
    RuleSet,
    ShockSpec,
    ThresholdSpec,
)
from streams.records import DocRef, Scored

EVIDENCE = 5
# A baseline of near-identical scores would make any change infinitely surprising.
MIN_STD = 0.05
# The longest baseline is kept in at most this many buckets, each at least a minute long.
MAX_BUCKETS = 720
TITLE_CHARS = 200


class _Doc(NamedTuple):
    doc_id: str
    ts: float
    score: float
    label: str
    event: str
    prob: float
    title: str
    url: str
    source: str


class _Verdict(NamedTuple):
    active: bool
    value: float
    threshold: float
    zscore: float | None
    evidence: list[_Doc]
    explanation: str


class _Baseline(NamedTuple):
    n: int
    total: float
    squares: float
    negatives: int
    span_s: float


class Evaluator:
    """Keep each ticker's window and baseline, and say which rules hold after each document.

    Args:
        ruleset: the rules to evaluate.
    """

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.horizon_s = max((r.window_s for r in ruleset.rules), default=3600.0)
        based = [r for r in ruleset.rules if isinstance(r, ShockSpec | NegativeSpikeSpec)]
        self.memory_s = max((r.window_s + r.baseline_s for r in based), default=0.0)
        longest = max((r.baseline_s for r in based), default=0.0)
        self.bucket_s = float(max(60, math.ceil(longest / MAX_BUCKETS)))

    @staticmethod
    def empty_state() -> dict[str, Any]:
        """Return a ticker's state before its first document."""
        return {"end": None, "since": None, "docs": {}, "buckets": [], "active": {}}

    def observe(self, state: dict[str, Any], rec: Scored) -> tuple[dict[str, Any], list[Condition]]:
        """Add one scored document to its ticker's state; return the new state and conditions.

        A condition comes for each rule in scope that is active, or that was active before
        this document. Near-duplicates, redeliveries and documents older than the longest
        window (too late to tell from a redelivery) change nothing and give no condition.

        Args:
            state: the ticker's state (``{}`` or ``empty_state()`` for a new ticker); not changed.
            rec: the scored document, of that ticker.
        """
        docs: dict[str, list[Any]] = state.get("docs") or {}
        if rec.dup_of or rec.doc_id in docs:
            return state, []
        ts = rec.published_at.timestamp()
        end = max(ts, float(state.get("end") or ts))
        if ts < end - self.horizon_s:
            return state, []
        title = rec.title[:TITLE_CHARS]
        row = [ts, rec.score, rec.label, rec.event_type, rec.event_prob, title, rec.url, rec.source]
        docs = {**docs, rec.doc_id: row}
        buckets = {int(b[0]): list(b[1:]) for b in state.get("buckets") or []}
        for doc_id, d in list(docs.items()):
            if d[0] < end - self.horizon_s:
                del docs[doc_id]
                if self.memory_s:
                    self._fold(buckets, d)
        forget = end - self.memory_s - self.bucket_s
        new: dict[str, Any] = {
            "end": end,
            "since": min(ts, float(state.get("since") or ts)),
            "docs": docs,
            "buckets": [[k, *v] for k, v in sorted(buckets.items()) if k > forget],
            "active": {},
        }
        kept = [_Doc(doc_id, *d) for doc_id, d in docs.items()]
        was: dict[str, float] = state.get("active") or {}
        conditions = []
        for rule in self.ruleset.rules:
            if not rule.covers(rec.ticker):
                continue
            verdict = self._judge(rule, rec.ticker, kept, new, rule.name in was)
            if verdict.active:
                new["active"][rule.name] = was.get(rule.name, ts)
            if verdict.active or rule.name in was:
                trigger = new["active"].get(rule.name, was.get(rule.name))
                conditions.append(_condition(rule, rec, kept, end, verdict, trigger))
        return new, conditions

    def _fold(self, buckets: dict[int, list[Any]], d: list[Any]) -> None:
        key = int(d[0] // self.bucket_s * self.bucket_s)
        n, total, squares, negatives = buckets.get(key, [0, 0.0, 0.0, 0])
        neg = 1 if d[2] == "negative" else 0
        buckets[key] = [n + 1, total + d[1], squares + d[1] * d[1], negatives + neg]

    def _judge(
        self, rule: Rule, ticker: str, kept: list[_Doc], state: dict[str, Any], was: bool
    ) -> _Verdict:
        start = state["end"] - rule.window_s
        window = [d for d in kept if d.ts >= start]
        if isinstance(rule, ThresholdSpec):
            return _threshold(rule, ticker, window, was)
        if isinstance(rule, EventSpec):
            return _event(rule, ticker, window)
        base = _baseline(rule.baseline_s, start, kept, state)
        if isinstance(rule, ShockSpec):
            return _shock(rule, ticker, window, base, was)
        return _spike(rule, ticker, window, base)


def _baseline(
    baseline_s: float, start: float, kept: list[_Doc], state: dict[str, Any]
) -> _Baseline:
    """Sum the baseline before a window: folded buckets, then kept documents before it."""
    low = start - baseline_s
    n, total, squares, negatives = 0, 0.0, 0.0, 0
    for key, b_n, b_total, b_squares, b_negatives in state["buckets"]:
        if key >= low:
            n, total, squares = n + b_n, total + b_total, squares + b_squares
            negatives += b_negatives
    for d in kept:
        if low <= d.ts < start:
            n, total, squares = n + 1, total + d.score, squares + d.score * d.score
            negatives += d.label == "negative"
    return _Baseline(n, total, squares, negatives, max(0.0, start - max(low, state["since"])))


def _mean(docs: list[_Doc]) -> float:
    return sum(d.score for d in docs) / len(docs) if docs else 0.0


def _worst(docs: list[_Doc]) -> list[_Doc]:
    return sorted(docs, key=lambda d: (d.score, -d.ts))[:EVIDENCE]


def _negatives(docs: list[_Doc]) -> int:
    return sum(1 for d in docs if d.label == "negative")


def _threshold(rule: ThresholdSpec, ticker: str, window: list[_Doc], was: bool) -> _Verdict:
    n, mean, negs = len(window), _mean(window), _negatives(window)
    release = rule.threshold + rule.hysteresis
    limit = release if was else rule.threshold
    # Firing needs min_docs; once firing, a thinner window does not resolve it while its
    # mean is still bad (only a recovery, or an empty window, does): no flapping.
    active = (n >= rule.min_docs or (was and n > 0)) and mean <= limit
    head = f"{ticker} mean sentiment {mean:+.2f} over {n} documents in the last {_span(rule)}"
    if n < rule.min_docs and not active:
        need = f"only {n} of the {rule.min_docs} documents the rule needs"
        text = f"{ticker} has {need} in the last {_span(rule)}."
    elif active and mean <= rule.threshold:
        text = f"{head} is at or below {rule.threshold:+.2f}; {negs} of {n} negative."
    else:
        band = f"{release:+.2f} (threshold plus hysteresis)" if was else f"{rule.threshold:+.2f}"
        verdict = "is still at or below" if active else "is above"
        text = f"{head} {verdict} {band}; {negs} of {n} negative."
    return _Verdict(active, mean, rule.threshold, None, _worst(window), text)


def _shock(
    rule: ShockSpec, ticker: str, window: list[_Doc], base: _Baseline, was: bool
) -> _Verdict:
    n, mean, negs = len(window), _mean(window), _negatives(window)
    baseline = f"{_span(rule.baseline_s)} baseline"
    if n < rule.min_docs or base.n < rule.min_baseline:
        text = (
            f"{ticker} has {n} documents in the last {_span(rule)} and {base.n} in its trailing "
            f"{baseline}; the rule needs {rule.min_docs} and {rule.min_baseline}."
        )
        return _Verdict(False, 0.0, rule.zscore, None, _worst(window), text)
    base_mean = base.total / base.n
    variance = (base.squares - base.total * base_mean) / (base.n - 1) if base.n > 1 else 0.0
    std = max(math.sqrt(max(variance, 0.0)), MIN_STD)
    z = (mean - base_mean) / (std / math.sqrt(n))
    limit = rule.zscore + rule.hysteresis if was else rule.zscore
    active = z <= limit
    if z <= rule.zscore:
        verdict = f"at or below {rule.zscore:+.1f}"
    else:
        band = f"{limit:+.1f} (threshold plus hysteresis)" if was else f"{limit:+.1f}"
        verdict = f"still at or below {band}" if active else f"above {band}"
    text = (
        f"{ticker} mean sentiment {mean:+.2f} over {n} documents in the last {_span(rule)} has "
        f"z-score {z:+.1f} against its trailing {baseline} (mean {base_mean:+.2f}, sd {std:.2f}, "
        f"{base.n} documents), {verdict}; {negs} of {n} negative."
    )
    return _Verdict(active, z, rule.zscore, z, _worst(window), text)


def _spike(rule: NegativeSpikeSpec, ticker: str, window: list[_Doc], base: _Baseline) -> _Verdict:
    negatives = [d for d in window if d.label == "negative"]
    count, span = len(negatives), _span(rule)
    if base.n < rule.min_baseline or base.span_s < rule.window_s:
        text = (
            f"{ticker} has {count} negative documents in the last {span}; its trailing baseline "
            f"({base.n} documents over {_span(base.span_s)}) is too short to compare with "
            f"(the rule needs {rule.min_baseline} documents over at least {span})."
        )
        return _Verdict(False, count, rule.min_docs, None, _worst(negatives), text)
    average = base.negatives * rule.window_s / base.span_s
    need = max(rule.factor * average, float(rule.min_docs))
    active = count >= need
    text = (
        f"{ticker} has {count} negative documents in the last {span} against a trailing average "
        f"of {average:.1f} per {span} over {_span(base.span_s)}; the rule fires at {need:.1f} "
        f"({rule.factor:g}x the average, at least {rule.min_docs})."
    )
    return _Verdict(active, count, need, None, _worst(negatives), text)


def _event(rule: EventSpec, ticker: str, window: list[_Doc]) -> _Verdict:
    typed = [d for d in window if d.event == rule.event]
    hits = sorted((d for d in typed if d.prob >= rule.probability), key=lambda d: (-d.prob, -d.ts))
    top = max((d.prob for d in typed), default=0.0)
    what = f"{rule.event} (8-K item {rule.item})" if rule.item else rule.event
    active = len(hits) >= rule.min_docs
    if hits:
        text = (
            f"{ticker}: {len(hits)} {what} document(s) with event probability at or above "
            f"{rule.probability:.2f} in the last {_span(rule)}, the likeliest {hits[0].title!r} "
            f"({hits[0].prob:.2f})."
        )
    else:
        text = (
            f"{ticker}: no {what} document with event probability at or above "
            f"{rule.probability:.2f} in the last {_span(rule)}."
        )
    return _Verdict(active, top, rule.probability, None, hits[:EVIDENCE], text)


def _condition(
    rule: Rule, rec: Scored, kept: list[_Doc], end: float, verdict: _Verdict, trigger: float | None
) -> Condition:
    start = end - rule.window_s
    window = [d for d in kept if d.ts >= start]
    labels = {"channels": ",".join(rule.channels)} if rule.channels else {}
    if rule.watchlist:
        labels["watchlist"] = rule.watchlist
    return Condition(
        rule=rule.name,
        kind=rule.kind,
        severity=rule.severity,
        ticker=rec.ticker,
        active=verdict.active,
        value=float(verdict.value),
        threshold=float(verdict.threshold),
        documents=len(window),
        window_start=_time(start),
        window_end=_time(end),
        zscore=verdict.zscore,
        evidence=tuple(
            DocRef(
                doc_id=d.doc_id,
                title=d.title,
                url=d.url,
                source=d.source,
                published_at=_time(d.ts),
                score=d.score,
            )
            for d in verdict.evidence[:EVIDENCE]
        ),
        trigger_published_at=_time(trigger) if trigger is not None else None,
        model_version=rec.model_version,
        sources=tuple(sorted({d.source for d in window})),
        explanation=verdict.explanation,
        labels=labels,
    )


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _span(value: Rule | float) -> str:
    """Write a duration the way rules files do: 90s, 5m, 1h, 30d."""
    seconds = value if isinstance(value, float | int) else value.window_s
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            exact = seconds % size == 0
            return f"{int(seconds // size)}{unit}" if exact else f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
