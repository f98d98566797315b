"""The signals window, pure: a list of scored records in, a state and its signals out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.records import Label, Scored, Signal
from streams.signals import MIN_BASELINE, TOP_DOCS, advance, empty_state

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
WINDOW = 3600


def scored(
    doc_id: str,
    published_at: datetime,
    score: float,
    label: Label = "neutral",
    ticker: str = "ACME",
) -> Scored:
    return Scored(
        doc_id=doc_id,
        ticker=ticker,
        kind="news",
        source="wire",
        title=f"title {doc_id}",
        url=f"https://example.com/{doc_id}",
        published_at=published_at,
        fetched_at=published_at,
        label=label,
        p_negative=0.2,
        p_neutral=0.6,
        p_positive=0.2,
        score=score,
        event_prob=0.0,
        relevance=1.0,
        model_version="fixed-1",
        scored_at=published_at,
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def feed(
    records: Iterable[Scored], state: dict[str, Any] | None = None, window_s: int = WINDOW
) -> tuple[dict[str, Any], list[Signal | None]]:
    state = empty_state() if state is None else state
    out: list[Signal | None] = []
    for rec in records:
        state, signal = advance(state, rec, window_s)
        out.append(signal)
    return state, out


def test_first_document_gives_a_signal_of_one() -> None:
    _, [signal] = feed([scored("d1", at(0), -0.4)])
    assert signal is not None
    assert (signal.ticker, signal.documents, signal.mean_score) == ("ACME", 1, -0.4)
    assert (signal.window_start, signal.window_end) == (at(-60), at(0))
    assert signal.model_version == "fixed-1"


def test_redelivered_document_gives_no_signal_and_keeps_the_state() -> None:
    state, _ = feed([scored("d1", at(0), -0.4), scored("d2", at(5), 0.2)])
    again, [signal] = feed([scored("d1", at(0), -0.4)], state)
    assert signal is None
    assert again == state


def test_document_older_than_the_window_is_ignored() -> None:
    state, signals = feed([scored("new", at(120), 0.5), scored("old", at(59), -1.0)])
    assert signals[1] is None
    assert set(state["docs"]) == {"new"}


def test_document_at_the_window_start_is_kept() -> None:
    _, signals = feed([scored("new", at(60), 0.5), scored("edge", at(0), -0.5)])
    assert signals[1] is not None
    assert (signals[1].documents, signals[1].mean_score) == (2, 0.0)


def test_window_evicts_old_documents_as_newer_ones_arrive() -> None:
    records = [scored("a", at(0), -1.0), scored("b", at(30), -0.5), scored("c", at(75), 0.5)]
    state, signals = feed(records)
    assert [(s.documents, s.mean_score) for s in signals if s] == [(1, -1.0), (2, -0.75), (2, 0.0)]
    assert set(state["docs"]) == {"b", "c"}


def test_negative_share() -> None:
    labels: list[Label] = ["negative", "negative", "neutral", "positive"]
    records = [scored(f"d{i}", at(i), -0.1, label) for i, label in enumerate(labels)]
    _, signals = feed(records)
    assert [s.negative_share for s in signals if s] == [1.0, 1.0, 2 / 3, 0.5]


def test_worst_lists_at_most_five_documents_by_score_ascending() -> None:
    scores = [0.3, -0.9, 0.0, -0.2, 0.8, -0.5, 0.1, -0.7]
    _, signals = feed(scored(f"d{i}", at(i), s) for i, s in enumerate(scores))
    last = signals[-1]
    assert last is not None
    assert len(last.worst) == TOP_DOCS == 5
    assert [d.score for d in last.worst] == [-0.9, -0.7, -0.5, -0.2, 0.0]
    assert [d.doc_id for d in last.worst] == ["d1", "d7", "d5", "d3", "d2"]
    assert last.worst[0].url == "https://example.com/d1"
    assert last.worst[0].published_at == at(1)


def test_zscore_waits_for_the_baseline_then_is_finite() -> None:
    records = [scored(f"d{i}", at(i), (-1) ** i * 0.5) for i in range(MIN_BASELINE + 2)]
    _, signals = feed(records)
    zscores = [s.zscore for s in signals if s]
    assert zscores[:MIN_BASELINE] == [None] * MIN_BASELINE
    assert all(z is not None and math.isfinite(z) for z in zscores[MIN_BASELINE:])


# Distinct doc ids, publication times over three windows (to the microsecond), any order.
docs_strategy = st.lists(
    st.tuples(
        st.integers(0, 3 * WINDOW * 10**6),
        st.floats(-1, 1, allow_nan=False),
    ),
    max_size=30,
).map(
    lambda items: [
        scored(f"doc{i}", T0 + timedelta(microseconds=us), s) for i, (us, s) in enumerate(items)
    ]
)
windows_strategy = st.integers(1, 2 * WINDOW)


def _last(signals: list[Signal | None]) -> Signal | None:
    emitted = [s for s in signals if s is not None]
    return emitted[-1] if emitted else None


@settings(max_examples=100, deadline=None)
@given(docs_strategy, windows_strategy)
def test_signal_describes_the_docs_in_state(records: list[Scored], window_s: int) -> None:
    state, signals = feed(records, window_s=window_s)
    last = _last(signals)
    if last is None:
        assert not records
        return
    in_state = [d[1] for d in state["docs"].values()]
    assert last.documents == len(in_state)
    assert -1 <= last.mean_score <= 1
    assert math.isclose(last.mean_score, sum(in_state) / len(in_state), abs_tol=1e-12)
    assert last.window_end - last.window_start == timedelta(seconds=window_s)
    assert all(
        datetime.fromtimestamp(d[0], UTC) >= last.window_start for d in state["docs"].values()
    )
    assert last.window_end == max(r.published_at for r in records)


@settings(max_examples=100, deadline=None)
@given(docs_strategy, windows_strategy)
def test_redelivering_the_whole_sequence_changes_nothing(
    records: list[Scored], window_s: int
) -> None:
    once, _ = feed(records, window_s=window_s)
    twice, replayed = feed(records, once, window_s=window_s)
    assert twice == once
    assert replayed == [None] * len(records)


@settings(max_examples=100, deadline=None)
@given(docs_strategy, windows_strategy)
def test_in_time_order_the_window_holds_exactly_the_last_window(
    records: list[Scored], window_s: int
) -> None:
    ordered = sorted(records, key=lambda r: r.published_at)
    state, signals = feed(ordered, window_s=window_s)
    assert all(s is not None for s in signals)
    if records:
        end = ordered[-1].published_at
        expected = {
            r.doc_id for r in records if r.published_at >= end - timedelta(seconds=window_s)
        }
        assert set(state["docs"]) == expected
