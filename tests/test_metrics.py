"""Classification metrics: predictions in, hand-computed accuracy, F1s and confusion out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.metrics import Report, classification_report, format_report

ABC = ("a", "b", "c")


def test_perfect_predictions() -> None:
    report = classification_report([0, 1, 2, 2], [0, 1, 2, 2], ABC)
    assert (report.accuracy, report.macro_f1, report.weighted_f1) == (1.0, 1.0, 1.0)
    assert report.confusion == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert report.per_class["c"].support == 2


def test_all_wrong() -> None:
    report = classification_report([0, 1, 2], [1, 2, 0], ABC)
    assert (report.accuracy, report.macro_f1, report.weighted_f1) == (0.0, 0.0, 0.0)
    assert report.confusion == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]


def test_imbalanced_by_hand() -> None:
    # a: tp 1 of 2 true, 2 predicted; b: tp 1 of 1, 2 predicted; c: tp 2 of 3, 2 predicted.
    report = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ABC)
    a, b, c = (report.per_class[x] for x in ABC)
    assert (a.precision, a.recall, a.f1, a.support) == (0.5, 0.5, 0.5, 2)
    assert (b.precision, b.recall, b.support) == (0.5, 1.0, 1)
    assert b.f1 == pytest.approx(2 / 3)
    assert c.precision == 1.0 and c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(0.8)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert report.weighted_f1 == pytest.approx((0.5 * 2 + 2 / 3 * 1 + 0.8 * 3) / 6)
    assert report.confusion == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_label_never_predicted_scores_zero_not_nan() -> None:
    report = classification_report([0, 1, 2, 2], [0, 1, 1, 1], ABC)
    assert report.per_class["c"] == report.per_class["c"].__class__(0.0, 0.0, 0.0, 2)
    # A label absent from both truth and predictions still counts in the macro mean.
    absent = classification_report([0, 1], [0, 1], ABC)
    assert absent.per_class["c"].f1 == 0.0
    assert absent.macro_f1 == pytest.approx(2 / 3)
    assert absent.weighted_f1 == 1.0


def test_weighted_differs_from_macro_under_imbalance() -> None:
    # 9 of "a" all right, the single "b" wrong: macro punishes it, weighted barely does.
    report = classification_report([0] * 9 + [1], [0] * 10, ABC[:2])
    assert report.per_class["a"].f1 == pytest.approx(2 * 0.9 / 1.9)
    assert report.macro_f1 == pytest.approx(0.9 / 1.9)
    assert report.weighted_f1 == pytest.approx(0.9 * 2 * 0.9 / 1.9)


def test_empty_and_invalid_input() -> None:
    empty = classification_report([], [], ABC)
    assert (empty.accuracy, empty.macro_f1, empty.weighted_f1, empty.n) == (0.0, 0.0, 0.0, 0)
    with pytest.raises(ValueError, match="y_true has 2 items"):
        classification_report([0, 1], [0], ABC)
    with pytest.raises(ValueError, match="outside 0..2"):
        classification_report([0, 3], [0, 1], ABC)


def test_to_json_keys_and_values() -> None:
    data = classification_report([0, 1], [0, 0], ABC[:2]).to_json()
    assert set(data) == {
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "per_class",
        "confusion",
        "labels",
        "n",
    }
    assert data["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert data["confusion"] == [[1, 0], [1, 0]]
    assert (data["labels"], data["n"]) == (["a", "b"], 2)


def test_format_report_rows_with_and_without_baseline() -> None:
    model = classification_report([0, 1, 2], [0, 1, 2], ABC)
    baseline = classification_report([0, 1, 2], [1, 1, 1], ABC)
    alone = format_report(model, None).splitlines()
    assert alone[0].split() == ["label", "precision", "recall", "f1", "support"]
    assert alone[1].split() == ["a", "1.000", "1.000", "1.000", "1"]
    assert [line.split()[:1] for line in alone[-3:]] == [["accuracy"], ["macro"], ["weighted"]]
    both = format_report(model, baseline, baseline_name="lexicon").splitlines()
    assert "model" in both[0] and "lexicon" in both[0]
    assert both[3].split() == ["b", "1.000", "1.000", "1.000", "0.333", "1.000", "0.500", "1"]
    assert both[-3].split() == ["accuracy", "1.000", "0.333", "3"]


pairs = st.integers(1, 6).flatmap(
    lambda k: st.tuples(
        st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), max_size=60)
    )
)


@given(pairs)
def test_accuracy_is_trace_over_total_and_f1_in_range(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    k, rows = case
    report: Report = classification_report(
        [t for t, _ in rows], [p for _, p in rows], [f"l{i}" for i in range(k)]
    )
    total = sum(map(sum, report.confusion))
    trace = sum(report.confusion[i][i] for i in range(k))
    assert total == report.n == len(rows)
    assert report.accuracy == (trace / total if total else 0.0)
    assert 0.0 <= report.macro_f1 <= 1.0
    assert 0.0 <= report.weighted_f1 <= 1.0
    assert [sum(r) for r in report.confusion] == [s.support for s in report.per_class.values()]
