"""The rule evaluator, pure: a ticker's scored documents in, its state and conditions out."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import ruleset
from alerts.conditions import Condition
from alerts.evaluate import Evaluator
from streams.records import Scored
from tests.records import T0, doc

SLUMP = ruleset.ThresholdSpec(name="slump", threshold=-0.3)


def run(
    rules: Iterable[ruleset.Rule], docs: Iterable[Scored], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Condition]]:
    evaluator = Evaluator(ruleset.RuleSet(rules=tuple(rules)))
    state = state if state is not None else evaluator.empty_state()
    out: list[Condition] = []
    for rec in docs:
        state, conditions = evaluator.observe(state, rec)
        out.extend(conditions)
    return state, out


def held(state: dict[str, Any]) -> int:
    """The documents a state holds within its horizon."""
    return sum(b[1] for b in state["window"]["recent"])


def flips(conditions: list[Condition]) -> list[bool]:
    """The active flag each time it changes, starting from inactive."""
    changes, last = [], False
    for c in conditions:
        if c.active != last:
            changes.append(c.active)
            last = c.active
    return changes


def seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


def test_twenty_negatives_in_a_minute_fire_a_threshold_rule_once() -> None:
    negatives = [doc(i, seconds(3 * i), -0.5 - i / 50) for i in range(20)]
    _, conditions = run([SLUMP], negatives)
    assert flips(conditions) == [True]
    assert len(conditions) == 18  # none before min_docs, then one per document while active
    last = conditions[-1]
    assert (last.rule, last.kind, last.ticker, last.documents) == ("slump", "threshold", "ACME", 20)
    assert last.value == sum(-0.5 - i / 50 for i in range(20)) / 20
    assert last.trigger_published_at == T0 + seconds(6)
    assert [e.doc_id for e in last.evidence] == [f"doc-ACME-{i}" for i in (19, 18, 17, 16, 15)]
    assert last.sources == ("wire0", "wire1")
    assert last.model_version == "fixed-1"
    assert last.explanation == (
        "ACME mean sentiment -0.69 over 20 documents in the last 1h is at or below -0.30; "
        "20 of 20 negative."
    )


def test_a_recovery_resolves_once_above_threshold_plus_hysteresis() -> None:
    negatives = [doc(i, seconds(3 * i), -0.6) for i in range(20)]
    recovery = [doc(100 + i, seconds(120 + i), 0.8) for i in range(20)]
    _, conditions = run([SLUMP], negatives + recovery)
    assert flips(conditions) == [True, False]
    resolved = conditions[-1]
    assert not resolved.active and resolved.trigger_published_at == T0 + seconds(6)
    assert "is above -0.25 (threshold plus hysteresis)" in resolved.explanation


def test_hysteresis_keeps_a_mean_just_above_the_threshold_active() -> None:
    scores = [-0.4, -0.4, -0.4, -0.1, -0.1]  # means: ..., -0.325, -0.28 (within 0.05 band)
    _, conditions = run([SLUMP], [doc(i, seconds(i), s) for i, s in enumerate(scores)])
    assert [c.active for c in conditions] == [True, True, True]
    assert "still at or below -0.25" in conditions[-1].explanation


def test_near_duplicates_and_redeliveries_never_count() -> None:
    first = [doc(i, seconds(i), -0.9) for i in range(2)]
    copies = [doc(9, seconds(5), -0.9, dup_of="doc-ACME-0"), first[0], first[1], first[0]]
    state, conditions = run([SLUMP], first + copies)
    assert conditions == []
    assert held(state) == 2


def test_a_window_ends_at_the_newest_publication_time_and_drops_older_documents() -> None:
    early = [doc(i, seconds(i), -0.9) for i in range(5)]
    late = [doc(10 + i, timedelta(hours=2, seconds=i), 0.1) for i in range(3)]
    state, conditions = run([SLUMP], early + late)
    assert flips(conditions) == [True, False]
    assert conditions[-1].documents == 1  # resolved: too few documents left to judge
    assert conditions[-1].window_end == T0 + timedelta(hours=2)
    assert "only 1 of the 3 documents the rule needs" in conditions[-1].explanation
    assert held(state) == 3


def _baseline(n: int, every: timedelta, negative_every: int = 0) -> list[Scored]:
    """A quiet, positive history: scores alternate 0.4 and 0.6."""
    return [
        doc(
            i,
            every * i,
            -0.2 if negative_every and i % negative_every == 0 else 0.4 + 0.2 * (i % 2),
        )
        for i in range(n)
    ]


def test_a_shock_rule_fires_against_a_long_positive_baseline() -> None:
    shock = ruleset.ShockSpec(name="shock", zscore=-3, min_docs=5)
    history = _baseline(96, timedelta(minutes=30))  # two days
    burst = [doc(500 + i, timedelta(hours=48, minutes=5 * i), -0.5) for i in range(6)]
    state, conditions = run([shock], history + burst)
    assert flips(conditions) == [True]
    fired = conditions[-1]
    assert fired.zscore is not None and fired.zscore <= -3
    assert fired.value == fired.zscore and fired.threshold == -3
    assert "against its trailing 30d baseline" in fired.explanation
    assert state["window"]["buckets"] and held(state) < 10


def test_a_shock_rule_needs_enough_baseline() -> None:
    shock = ruleset.ShockSpec(name="shock", zscore=-3, min_docs=5, min_baseline=20)
    history = _baseline(10, timedelta(minutes=30))
    burst = [doc(500 + i, timedelta(hours=5, minutes=5 * i), -0.5) for i in range(6)]
    assert run([shock], history + burst)[1] == []


def test_negative_spike_fires_on_a_burst_of_negatives() -> None:
    spike = ruleset.NegativeSpikeSpec(name="spike", factor=3, window_s=1800, min_docs=5)
    history = _baseline(72, timedelta(hours=1), negative_every=10)  # 3 days, 8 negatives
    burst = [doc(500 + i, timedelta(hours=72, minutes=2 * i), -0.7) for i in range(8)]
    _, conditions = run([spike], history + burst)
    assert flips(conditions) == [True]
    assert conditions[-1].value == 8 and conditions[-1].threshold == 5
    assert all(e.score == -0.7 for e in conditions[-1].evidence)


def test_negative_spike_is_quiet_when_negatives_are_usual() -> None:
    spike = ruleset.NegativeSpikeSpec(name="spike", factor=3, window_s=1800, min_docs=5)
    history = _baseline(72 * 6, timedelta(minutes=10), negative_every=1)  # 3 per 30m
    burst = [doc(5000 + i, timedelta(hours=72, minutes=2 * i), -0.7) for i in range(8)]
    assert run([spike], history + burst)[1] == []


def test_an_event_rule_fires_on_an_8k_item_103_document(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules: [{name: chapter11, kind: event, item: '1.03', probability: 0.9}]")
    rules = ruleset.load_ruleset(path).rules
    filing = doc(1, seconds(0), -0.8, event="bankruptcy", prob=1.0)
    _, conditions = run(rules, [filing])
    assert [(c.rule, c.kind, c.active, c.value) for c in conditions] == [
        ("chapter11", "event", True, 1.0)
    ]
    assert conditions[0].evidence[0].doc_id == filing.doc_id
    assert conditions[0].trigger_published_at == T0
    assert "bankruptcy (8-K item 1.03)" in conditions[0].explanation


def test_an_event_rule_ignores_an_event_below_its_probability() -> None:
    rule = ruleset.EventSpec(name="chapter11", event="bankruptcy", probability=0.9)
    unsure = doc(1, seconds(0), -0.8, event="bankruptcy", prob=0.6)
    other = doc(2, seconds(1), -0.8, event="officer_change", prob=1.0)
    assert run([rule], [unsure, other])[1] == []


def test_scope_restricts_a_rule_to_its_tickers_or_watchlist(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "watchlists: {chips: [NVDA]}\n"
        "rules:\n"
        "  - {name: listed, kind: threshold, threshold: -0.3, scope: {watchlist: chips}}\n"
        "  - {name: named, kind: threshold, threshold: -0.3, scope: {tickers: [aapl]}}\n"
    )
    rules = ruleset.load_ruleset(path).rules
    fired = {
        ticker: {
            c.rule
            for c in run(rules, [doc(i, seconds(i), -0.9, ticker=ticker) for i in range(3)])[1]
        }
        for ticker in ("NVDA", "AAPL", "TSLA")
    }
    assert fired == {"NVDA": {"listed"}, "AAPL": {"named"}, "TSLA": set()}


RULES = (
    ruleset.ThresholdSpec(name="slump", threshold=-0.2, window_s=600),
    ruleset.ShockSpec(name="shock", zscore=-2, window_s=300, baseline_s=3600, min_baseline=5),
    ruleset.NegativeSpikeSpec(
        name="spike", factor=2, window_s=300, baseline_s=7200, min_baseline=5
    ),
    ruleset.EventSpec(name="event", event="bankruptcy", window_s=900),
)
STREAM = st.lists(
    st.tuples(
        st.integers(0, 40),  # doc id: repeats are redeliveries
        st.integers(0, 6 * 3600),  # publication second
        st.floats(-1, 1),
        st.booleans(),  # near-duplicate
        st.sampled_from(["none", "bankruptcy"]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(STREAM)
def test_state_stays_json_and_bounded_by_the_window(stream: list[Any]) -> None:
    evaluator = Evaluator(ruleset.RuleSet(rules=RULES))
    state: dict[str, Any] = {}
    for n, second, score, near_dup, event in stream:
        rec = doc(
            n, seconds(second), score, event=event, prob=0.95, dup_of="x" if near_dup else None
        )
        state, conditions = evaluator.observe(state, rec)
        assert json.loads(json.dumps(state)) == state
        assert len({c.rule for c in conditions}) == len(conditions) <= len(RULES)
        assert all(c.documents <= held(state) for c in conditions)
    if state:
        windows, window = evaluator.windows, state["window"]
        low = window["end"] - windows.horizon_s - windows.step
        assert all(b[0] > low for b in window["recent"])
        assert len(window["recent"]) <= windows.horizon_s / windows.step + 1
        assert len(window["buckets"]) <= windows.memory_s / windows.bucket_s + 2
        assert set(state["active"]) <= {r.name for r in RULES}
        # refs: one entry per recent bucket, no more
        assert len(evaluator.refs) == len(window["recent"])


def test_a_thinning_window_does_not_resolve_a_bad_mean() -> None:
    # Three bad documents fire; an hour later two have left the 1h window, but the
    # mean of what is left is still bad: still firing. A recovery resolves it.
    hour = timedelta(hours=1)
    docs = [doc(1, seconds(0), -0.8), doc(2, seconds(60), -0.8), doc(3, seconds(120), -0.8)]
    docs += [doc(4, hour + seconds(90), -0.6), doc(5, hour + seconds(200), 0.9)]
    _, conditions = run([SLUMP], docs)
    assert [(c.active, c.documents) for c in conditions] == [
        (True, 3),
        (True, 2),
        (False, 2),
    ]
