"""The threshold rule: a list of signals in, a list of alerts out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import ThresholdRule
from streams.records import Alert, DocRef, Scored, Signal
from streams.signals import advance, empty_state

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
RULE = ThresholdRule(threshold=-0.3, min_docs=3, hysteresis=0.05)
WORST = (
    DocRef(
        doc_id="d1",
        title="Guidance cut",
        url="https://example.com/d1",
        source="wire",
        published_at=T0,
        score=-0.9,
    ),
)


def scored(doc_id: str, published_at: datetime, score: float) -> Scored:
    return Scored(
        doc_id=doc_id,
        ticker="ACME",
        kind="news",
        source="wire",
        published_at=published_at,
        fetched_at=published_at,
        label="negative" if score < 0 else "positive",
        p_negative=0.5,
        p_neutral=0.0,
        p_positive=0.5,
        score=score,
        event_prob=0.0,
        relevance=1.0,
        model_version="fixed-1",
        scored_at=published_at,
    )


def signal(mean: float, documents: int = 4, ticker: str = "ACME", minute: int = 0) -> Signal:
    end = T0 + timedelta(minutes=minute)
    return Signal(
        ticker=ticker,
        window_start=end - timedelta(hours=1),
        window_end=end,
        documents=documents,
        mean_score=mean,
        negative_share=0.5,
        worst=WORST,
    )


def run(
    signals: Iterable[Signal], rule: ThresholdRule = RULE
) -> tuple[list[Alert | None], dict[str, Any] | None]:
    state: dict[str, Any] | None = None
    alerts: list[Alert | None] = []
    for sig in signals:
        alert, state = rule.evaluate(sig, state)
        alerts.append(alert)
    return alerts, state


def test_breach_fires_once() -> None:
    alerts, state = run([signal(-0.5)])
    [alert] = alerts
    assert alert is not None
    assert (alert.state, alert.ticker, alert.value, alert.threshold) == (
        "firing",
        "ACME",
        -0.5,
        -0.3,
    )
    assert state is not None and state["alert_id"] == alert.alert_id


def test_breach_at_the_threshold_fires() -> None:
    [alert], _ = run([signal(-0.3)])
    assert alert is not None and alert.state == "firing"


def test_continued_breach_does_not_repeat() -> None:
    alerts, _ = run([signal(-0.5, minute=i) for i in range(4)])
    assert [a.state if a else None for a in alerts] == ["firing", None, None, None]


def test_too_few_documents_never_fire() -> None:
    alerts, state = run([signal(-1.0, documents=n) for n in (1, 2, 2, 1)])
    assert alerts == [None] * 4
    assert state is None


def test_recovery_resolves_the_same_alert() -> None:
    alerts, state = run([signal(-0.5), signal(-0.4, minute=1), signal(0.1, minute=2)])
    fired, resolved = alerts[0], alerts[2]
    assert fired is not None and resolved is not None and alerts[1] is None
    assert resolved.state == "resolved"
    assert resolved.alert_id == fired.alert_id
    assert resolved.fired_at == fired.fired_at
    assert resolved.fingerprint == fired.fingerprint
    assert state is None


def test_mean_inside_the_hysteresis_band_neither_resolves_nor_refires() -> None:
    alerts, state = run([signal(-0.5), signal(-0.27, minute=1), signal(-0.4, minute=2)])
    assert [a.state if a else None for a in alerts] == ["firing", None, None]
    assert state is not None


def test_after_resolving_a_new_breach_fires_a_new_alert() -> None:
    alerts, _ = run([signal(-0.5), signal(0.0, minute=1), signal(-0.6, minute=2)])
    states = [(a.state, a.alert_id) for a in alerts if a]
    assert [s for s, _ in states] == ["firing", "resolved", "firing"]
    assert states[0][1] == states[1][1] != states[2][1]


def test_a_new_incident_gets_a_new_alert_id_while_the_window_end_stands() -> None:
    # Late documents land inside the window without moving its end: fire, resolve, fire.
    late = [("late+", 1.5, 1.0), ("late-", 2.5, -1.0)]
    records = [scored(f"d{m}", T0 + timedelta(minutes=m), -0.6) for m in (3, 0, 1)] + [
        scored(doc_id, T0 + timedelta(minutes=m), s) for doc_id, m, s in late
    ]
    state = empty_state()
    signals: list[Signal] = []
    for rec in records:
        state, sig = advance(state, rec, 3600)
        assert sig is not None
        signals.append(sig)
    alerts = [a for a in run(signals)[0] if a is not None]
    assert [a.state for a in alerts] == ["firing", "resolved", "firing"]
    assert len({a.window_end for a in alerts}) == 1
    assert alerts[2].alert_id != alerts[0].alert_id


def test_alert_id_is_deterministic_for_the_same_signal() -> None:
    first, _ = RULE.evaluate(signal(-0.5), None)
    again, _ = RULE.evaluate(signal(-0.5), None)
    assert first is not None and again is not None
    assert first.alert_id == again.alert_id


def test_explanation_names_the_ticker_and_numbers() -> None:
    [alert], _ = run([signal(-0.5, documents=4)])
    assert alert is not None
    for part in ("ACME", "-0.500", "4 documents", "-0.300", "2 of 4 are negative"):
        assert part in alert.explanation


def test_evidence_is_the_signals_worst_documents() -> None:
    sig = signal(-0.5)
    alert, _ = RULE.evaluate(sig, None)
    assert alert is not None
    assert alert.evidence == sig.worst


def test_fingerprint_is_stable_per_rule_and_ticker() -> None:
    assert RULE.fingerprint("ACME") == ThresholdRule().fingerprint("ACME")
    assert RULE.fingerprint("ACME") != RULE.fingerprint("INIT")
    assert RULE.fingerprint("ACME") != ThresholdRule(name="other").fingerprint("ACME")
    acme, _ = RULE.evaluate(signal(-0.5), None)
    init, _ = RULE.evaluate(signal(-0.5, ticker="INIT"), None)
    assert acme is not None and init is not None
    assert acme.fingerprint == RULE.fingerprint("ACME")
    assert init.fingerprint == RULE.fingerprint("INIT")


def window_like(steps: list[tuple[float, bool, int]]) -> Iterator[Signal]:
    """Signals as the window emits them: when its end stands, one more document each."""
    minute, documents = 0, 0
    for mean, moves, fresh_count in steps:
        if moves or not documents:
            minute, documents = minute + 1, fresh_count
        else:
            documents += 1
        yield signal(mean, documents=documents, minute=minute)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1, 1), st.booleans(), st.integers(1, 6)), max_size=40),
    st.floats(-0.9, 0.5),
    st.floats(0, 0.3),
)
def test_alerts_alternate_starting_with_firing(
    steps: list[tuple[float, bool, int]], threshold: float, hysteresis: float
) -> None:
    rule = ThresholdRule(threshold=threshold, min_docs=3, hysteresis=hysteresis)
    fired = [a for a in run(window_like(steps), rule)[0] if a is not None]
    assert [a.state for a in fired] == ["firing", "resolved"] * (len(fired) // 2) + (
        ["firing"] if len(fired) % 2 else []
    )
    for a in fired:
        if a.state == "firing":
            assert a.value <= threshold and a.documents >= 3
        else:
            assert a.value > threshold + hysteresis
    for first, second in zip(fired[::2], fired[1::2], strict=False):
        assert first.alert_id == second.alert_id
    incidents = [a.alert_id for a in fired if a.state == "firing"]
    assert len(set(incidents)) == len(incidents)
