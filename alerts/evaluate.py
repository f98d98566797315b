"""Evaluate a rule set on one ticker's scored documents, in event time, into conditions.

The windows and baselines are `streams.windows.Windows`'s, the one window engine, sized for
the rules: its horizon is the longest rule window, its memory the longest window plus
baseline of the shock and negative_spike rules, its probes the event rules' tests. A
ticker's state is ``{"window": <the engine's state>, "active": {rule: publication time of
the document that made it active}}``, JSON-ready (it lives in a Faust table keyed by ticker).
"""

from __future__ import annotations

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
from streams.records import Scored
from streams.windows import (
    EVIDENCE,
    Baseline,
    Entry,
    Events,
    Probe,
    Refs,
    Window,
    Windows,
    zscore,
)

LOWEST, LOWEST_NEGATIVE = "lowest", "lowest negative"


class _Verdict(NamedTuple):
    active: bool
    value: float
    threshold: float
    zscore: float | None
    evidence: list[Entry] | str  # the entries, or which of `Windows.lowest` to read
    explanation: str


def _probe(rule: EventSpec) -> Probe:
    return Probe(rule.event, rule.probability)


class Evaluator:
    """Keep each ticker's window and baseline, and say which rules hold after each document.

    Args:
        ruleset: the rules to evaluate.
        refs: where the engine keeps titles and doc ids of recent documents (a Faust table
            in the worker); an in-memory dict when None.
    """

    def __init__(self, ruleset: RuleSet, refs: Refs | None = None) -> None:
        self.ruleset = ruleset
        self.refs: Refs = refs if refs is not None else {}
        horizon = max((r.window_s for r in ruleset.rules), default=3600.0)
        based = [r for r in ruleset.rules if isinstance(r, ShockSpec | NegativeSpikeSpec)]
        self.windows = Windows(
            horizon,
            baseline_s=max((r.baseline_s for r in based), default=0.0),
            memory_s=max((r.window_s + r.baseline_s for r in based), default=0.0),
            probes=[_probe(r) for r in ruleset.rules if isinstance(r, EventSpec)],
            negative_evidence=any(isinstance(r, NegativeSpikeSpec) for r in ruleset.rules),
        )

    @staticmethod
    def empty_state() -> dict[str, Any]:
        """Return a ticker's state before its first document."""
        return {"window": Windows.empty(), "active": {}}

    def observe(
        self, state: dict[str, Any], rec: Scored, refs: Refs | None = None
    ) -> tuple[dict[str, Any], list[Condition]]:
        """Add one scored document to its ticker's state; return the new state and conditions.

        A condition comes for each rule in scope that is active, or that was active before
        this document. Near-duplicates, redeliveries and documents older than the longest
        window change nothing and give no condition.

        Args:
            state: the ticker's state (``{}`` or ``empty_state()`` for a new ticker); not changed.
            rec: the scored document, of that ticker.
            refs: the engine's titles and doc ids, when not the evaluator's own.
        """
        refs = self.refs if refs is None else refs
        window = self.windows.add(state.get("window") or {}, rec, refs)
        if window is None:
            return state, []
        new: dict[str, Any] = {"window": window, "active": {}}
        was: dict[str, float] = state.get("active") or {}
        ts = rec.published_at.timestamp()
        conditions = []
        for rule in self.ruleset.rules:
            if not rule.covers(rec.ticker):
                continue
            verdict = self._judge(rule, rec.ticker, window, rule.name in was, refs)
            if verdict.active:
                new["active"][rule.name] = was.get(rule.name, ts)
            if verdict.active or rule.name in was:
                trigger = new["active"].get(rule.name, was.get(rule.name))
                conditions.append(self._condition(rule, rec, window, verdict, trigger, refs))
        return new, conditions

    def _judge(
        self, rule: Rule, ticker: str, state: dict[str, Any], was: bool, refs: Refs
    ) -> _Verdict:
        if isinstance(rule, EventSpec):
            found = self.windows.events(state, rule.window_s, _probe(rule))
            likeliest = self.windows.docrefs(ticker, found.hits[:1], refs)
            return _event(rule, ticker, found, likeliest[0].title if likeliest else "")
        window = self.windows.window(state, rule.window_s)
        if isinstance(rule, ThresholdSpec):
            return _threshold(rule, ticker, window, was)
        base = self.windows.baseline(state, rule.window_s, rule.baseline_s)
        if isinstance(rule, ShockSpec):
            return _shock(rule, ticker, window, base, was)
        return _spike(rule, ticker, window, base)

    def _condition(
        self,
        rule: Rule,
        rec: Scored,
        state: dict[str, Any],
        verdict: _Verdict,
        trigger: float | None,
        refs: Refs,
    ) -> Condition:
        end = float(state["end"])
        window = self.windows.window(state, rule.window_s)
        labels = {"channels": ",".join(rule.channels)} if rule.channels else {}
        if rule.watchlist:
            labels["watchlist"] = rule.watchlist
        entries = verdict.evidence
        if isinstance(entries, str):
            entries = self.windows.lowest(state, rule.window_s, entries == LOWEST_NEGATIVE)
        evidence = self.windows.docrefs(rec.ticker, entries[:EVIDENCE], refs)
        return Condition(
            rule=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            ticker=rec.ticker,
            active=verdict.active,
            value=float(verdict.value),
            threshold=float(verdict.threshold),
            documents=window.documents,
            window_start=_time(end - rule.window_s),
            window_end=_time(end),
            zscore=verdict.zscore,
            evidence=evidence,
            trigger_published_at=_time(trigger) if trigger is not None else None,
            model_version=rec.model_version,
            sources=window.sources,
            explanation=verdict.explanation,
            labels=labels,
        )


def _threshold(rule: ThresholdSpec, ticker: str, window: Window, was: bool) -> _Verdict:
    n, mean, negs = window.documents, window.mean, window.negatives
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
    return _Verdict(active, mean, rule.threshold, None, LOWEST, text)


def _shock(rule: ShockSpec, ticker: str, window: Window, base: Baseline, was: bool) -> _Verdict:
    n, mean, negs = window.documents, window.mean, window.negatives
    baseline = f"{_span(rule.baseline_s)} baseline"
    if n < rule.min_docs or base.n < rule.min_baseline:
        text = (
            f"{ticker} has {n} documents in the last {_span(rule)} and {base.n} in its trailing "
            f"{baseline}; the rule needs {rule.min_docs} and {rule.min_baseline}."
        )
        return _Verdict(False, 0.0, rule.zscore, None, LOWEST, text)
    z = zscore(window, base)
    limit = rule.zscore + rule.hysteresis if was else rule.zscore
    active = z <= limit
    if z <= rule.zscore:
        verdict = f"at or below {rule.zscore:+.1f}"
    else:
        band = f"{limit:+.1f} (threshold plus hysteresis)" if was else f"{limit:+.1f}"
        verdict = f"still at or below {band}" if active else f"above {band}"
    text = (
        f"{ticker} mean sentiment {mean:+.2f} over {n} documents in the last {_span(rule)} has "
        f"z-score {z:+.1f} against its trailing {baseline} (mean {base.mean:+.2f}, sd "
        f"{base.std:.2f}, {base.n} documents), {verdict}; {negs} of {n} negative."
    )
    return _Verdict(active, z, rule.zscore, z, LOWEST, text)


def _spike(rule: NegativeSpikeSpec, ticker: str, window: Window, base: Baseline) -> _Verdict:
    count, span = window.negatives, _span(rule)
    if base.n < rule.min_baseline or base.span_s < rule.window_s:
        text = (
            f"{ticker} has {count} negative documents in the last {span}; its trailing baseline "
            f"({base.n} documents over {_span(base.span_s)}) is too short to compare with "
            f"(the rule needs {rule.min_baseline} documents over at least {span})."
        )
        return _Verdict(False, count, rule.min_docs, None, LOWEST_NEGATIVE, text)
    average = base.negatives * rule.window_s / base.span_s
    need = max(rule.factor * average, float(rule.min_docs))
    active = count >= need
    text = (
        f"{ticker} has {count} negative documents in the last {span} against a trailing average "
        f"of {average:.1f} per {span} over {_span(base.span_s)}; the rule fires at {need:.1f} "
        f"({rule.factor:g}x the average, at least {rule.min_docs})."
    )
    return _Verdict(active, count, need, None, LOWEST_NEGATIVE, text)


def _event(rule: EventSpec, ticker: str, found: Events, likeliest: str) -> _Verdict:
    what = f"{rule.event} (8-K item {rule.item})" if rule.item else rule.event
    active = found.matches >= rule.min_docs
    if found.hits:
        text = (
            f"{ticker}: {found.matches} {what} document(s) with event probability at or above "
            f"{rule.probability:.2f} in the last {_span(rule)}, the likeliest {likeliest!r} "
            f"({found.hits[0].rank:.2f})."
        )
    else:
        text = (
            f"{ticker}: no {what} document with event probability at or above "
            f"{rule.probability:.2f} in the last {_span(rule)}."
        )
    return _Verdict(active, found.top, rule.probability, None, found.hits, text)


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
