"""The window engine, pure: scored records in, bucketed sums out, checked against the documents."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.records import Scored
from streams.windows import EVIDENCE, Probe, Refs, Windows
from tests.records import doc

HOUR = 3600.0


def scored(n: int, second: float, score: float, event: str = "none", prob: float = 0.0) -> Scored:
    """A document of ACME, ``second`` s after T0."""
    return doc(n, timedelta(seconds=second), score, event=event, prob=prob)


def feed(
    windows: Windows, records: Iterable[Scored], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Refs, list[bool]]:
    state, refs, taken = state or windows.empty(), {}, []
    for rec in records:
        new = windows.add(state, rec, refs)
        taken.append(new is not None)
        state = new or state
    return state, refs, taken


def in_window(windows: Windows, records: list[Scored], window_s: float) -> list[Scored]:
    """The documents a window should hold: those of buckets overlapping [end - W, end]."""
    end = max(r.published_at.timestamp() for r in records)
    low = (end - window_s) // windows.step * windows.step
    return [r for r in records if r.published_at.timestamp() >= low]


RECORDS = st.lists(
    st.builds(
        scored,
        st.integers(0, 300),
        st.floats(0, 4 * HOUR, allow_nan=False),
        st.floats(-1, 1, allow_nan=False),
        st.sampled_from(["none", "bankruptcy"]),
        st.floats(0, 1, allow_nan=False),
    ),
    min_size=1,
    max_size=80,
    unique_by=lambda r: r.doc_id,  # a doc id has one publication time
)


@settings(max_examples=100, deadline=None)
@given(RECORDS, st.sampled_from([60.0, 600.0, HOUR]))
def test_in_time_order_a_window_holds_what_its_documents_say(
    records: list[Scored], window_s: float
) -> None:
    windows = Windows(HOUR, probes=[Probe("bankruptcy", 0.5)], negative_evidence=True)
    ordered = sorted(records, key=lambda r: r.published_at)
    state, refs, _ = feed(windows, ordered)
    held = in_window(windows, ordered, window_s)
    got = windows.window(state, window_s)
    assert got.documents == len(held)
    assert math.isclose(got.mean, sum(r.score for r in held) / len(held), abs_tol=1e-9)
    assert got.negatives == sum(r.label == "negative" for r in held)
    assert got.sources == tuple(sorted({r.source for r in held}))
    worst = sorted(held, key=lambda r: (r.score, -r.published_at.timestamp(), r.doc_id))
    lowest = windows.lowest(state, window_s)
    assert [e.doc_id for e in lowest] == [r.doc_id for r in worst[:EVIDENCE]]
    negatives = [r.doc_id for r in worst if r.label == "negative"][:EVIDENCE]
    assert [e.doc_id for e in windows.lowest(state, window_s, negative=True)] == negatives
    refs_of = windows.docrefs("ACME", lowest, refs)
    assert [(d.title, d.url) for d in refs_of] == [(r.title, r.url) for r in worst[:EVIDENCE]]
    hits = [r for r in held if r.event_type == "bankruptcy" and r.event_prob >= 0.5]
    found = windows.events(state, window_s, Probe("bankruptcy", 0.5))
    assert found.matches == len(hits)
    typed = [r.event_prob for r in held if r.event_type == "bankruptcy"]
    assert found.top == max(typed, default=0.0)
    assert json.loads(json.dumps(state)) == state


@settings(max_examples=100, deadline=None)
@given(RECORDS)
def test_redelivering_the_whole_sequence_changes_nothing(records: list[Scored]) -> None:
    windows = Windows(HOUR, baseline_s=6 * HOUR, memory_s=7 * HOUR)
    once, refs, _ = feed(windows, records)
    before = json.dumps(refs, sort_keys=True)
    twice = once
    for rec in records:
        assert windows.add(twice, rec, refs) is None
    assert json.dumps(refs, sort_keys=True) == before


def test_a_document_at_the_window_start_is_kept_and_one_older_than_the_horizon_is_not() -> None:
    windows = Windows(HOUR)
    state, _, taken = feed(windows, [scored(1, 0, -0.5), scored(2, HOUR, 0.5)])
    assert windows.window(state, HOUR).documents == 2
    _, _, late = feed(windows, [scored(3, -windows.step, 0.1)], state)
    assert taken == [True, True] and late == [False]


def test_the_state_stops_growing_however_many_documents_the_window_holds() -> None:
    windows = Windows(HOUR, baseline_s=30 * 86_400.0, memory_s=30 * 86_400.0 + HOUR)

    def size(per_hour: int) -> int:
        every = HOUR / per_hour
        records = [scored(i, i * every, math.sin(i)) for i in range(2 * per_hour)]
        state, refs, _ = feed(windows, records)
        assert len(refs) == len(state["recent"]) <= windows.horizon_s / windows.step + 1
        return len(json.dumps(state))

    # Twenty documents a 30 s bucket fill its evidence lists; a hundred change nothing.
    busy, busier = size(2_400), size(12_000)
    assert busier < 1.05 * busy


def test_the_baseline_sums_what_came_before_the_window() -> None:
    windows = Windows(HOUR, baseline_s=6 * HOUR, memory_s=7 * HOUR)
    history = [scored(i, i * 600.0, 0.4 + 0.2 * (i % 2)) for i in range(36)]  # 6 h, every 10 m
    burst = [scored(100 + i, 6 * HOUR + i * 60.0, -0.5) for i in range(6)]
    state, _, _ = feed(windows, history + burst)
    base = windows.baseline(state, 1800.0, 6 * HOUR)
    window = windows.window(state, 1800.0)
    # The window starts at 5:35: the burst and the documents of 5:40 and 5:50.
    assert window.documents == 6 + 2
    assert base.n == 34
    assert math.isclose(base.mean, sum(r.score for r in history[:34]) / 34)
    assert base.span_s == 6 * HOUR + 300 - 1800  # from the first document to the window


def test_refs_saved_ahead_of_their_state_do_not_hide_a_redelivered_document() -> None:
    windows = Windows(HOUR)
    before, refs, _ = feed(windows, [scored(1, 0, -0.5)])
    after = windows.add(before, scored(2, 1, -0.5), refs)  # refs written, then a crash
    assert after is not None and windows.window(after, HOUR).documents == 2
    again = windows.add(before, scored(2, 1, -0.5), refs)  # redelivered against the old state
    assert again is not None and windows.window(again, HOUR).documents == 2
    assert windows.add(again, scored(2, 1, -0.5), refs) is None
