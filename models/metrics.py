"""Classification metrics (accuracy, per-class and averaged F1, confusion) and their text table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision, recall and F1 of one label, and how many true examples it has."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """The scores of one set of predictions against the truth.

    Args:
        labels: label names, in index order.
        confusion: counts, ``confusion[true][predicted]``.
        per_class: the scores of each label, by name.
        accuracy: share of exact hits.
        macro_f1: unweighted mean F1 over every label, absent ones included.
        weighted_f1: mean F1 weighted by each label's support.
        n: how many examples were scored.
    """

    labels: tuple[str, ...]
    confusion: list[list[int]]
    per_class: dict[str, ClassScores]
    accuracy: float
    macro_f1: float
    weighted_f1: float
    n: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready values: accuracy, F1s, per-class scores, confusion, labels, n."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "per_class": {
                label: {
                    "precision": scores.precision,
                    "recall": scores.recall,
                    "f1": scores.f1,
                    "support": scores.support,
                }
                for label, scores in self.per_class.items()
            },
            "confusion": [list(row) for row in self.confusion],
            "labels": list(self.labels),
            "n": self.n,
        }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0.0 where den is 0 (sklearn's zero_division=0)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> Report:
    """Score predicted label indices against true ones.

    Every label counts in the macro average, also one with no true examples (as sklearn does
    when given ``labels``); undefined precision, recall or F1 are 0.0.

    Raises:
        ValueError: the sequences differ in length or hold an index outside ``labels``.
    """
    k = len(labels)
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        msg = f"y_true has {true.size} items, y_pred {pred.size}"
        raise ValueError(msg)
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values.size and (values.min() < 0 or values.max() >= k):
            msg = f"{name} holds label indices outside 0..{k - 1}"
            raise ValueError(msg)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _ratio(hits, predicted.astype(np.float64))
    recall = _ratio(hits, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    n = int(true.size)
    return Report(
        labels=tuple(labels),
        confusion=confusion.tolist(),
        per_class={
            label: ClassScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
        },
        accuracy=float(hits.sum() / n) if n else 0.0,
        macro_f1=float(f1.mean()) if k else 0.0,
        weighted_f1=float((f1 * support).sum() / n) if n else 0.0,
        n=n,
    )


def _macro(report: Report, field: str) -> float:
    values = [getattr(scores, field) for scores in report.per_class.values()]
    return float(np.mean(values)) if values else 0.0


def _weighted(report: Report, field: str) -> float:
    if not report.n:
        return 0.0
    total = sum(getattr(s, field) * s.support for s in report.per_class.values())
    return float(total / report.n)


_Cells = tuple[float | None, float | None, float | None]


def format_report(report: Report, baseline: Report | None, baseline_name: str = "baseline") -> str:
    """A text table of per-class precision, recall, F1 and support, then the averages.

    Args:
        baseline: scores of another model on the same examples, printed on the same rows.
        baseline_name: the heading of the baseline's columns.
    """
    if baseline is not None and baseline.labels != report.labels:
        msg = "the baseline was scored on other labels"
        raise ValueError(msg)
    width = max(len(label) for label in (*report.labels, "weighted avg")) + 2
    block = f"{'precision':>10}{'recall':>8}{'f1':>8}"

    def cells(p: float | None, r: float | None, f: float | None) -> str:
        return "".join(
            f"{'':>{w}}" if v is None else f"{v:>{w}.3f}" for v, w in ((p, 10), (r, 8), (f, 8))
        )

    def row(name: str, values: list[_Cells], support: int) -> str:
        return f"{name:<{width}}" + "   ".join(cells(*v) for v in values) + f"{support:>10}"

    reports = [report] if baseline is None else [report, baseline]
    lines = []
    if baseline is not None:
        heads = (" model ", f" {baseline_name} ")
        lines.append(" " * width + "   ".join(f"{h:-^26}" for h in heads))
    lines.append(f"{'label':<{width}}" + "   ".join(block for _ in reports) + f"{'support':>10}")
    for label in report.labels:
        scores = [r.per_class[label] for r in reports]
        support = report.per_class[label].support
        lines.append(row(label, [(s.precision, s.recall, s.f1) for s in scores], support))
    lines.append("")
    lines.append(row("accuracy", [(None, None, r.accuracy) for r in reports], report.n))
    lines.append(
        row(
            "macro avg",
            [(_macro(r, "precision"), _macro(r, "recall"), r.macro_f1) for r in reports],
            report.n,
        )
    )
    lines.append(
        row(
            "weighted avg",
            [(_weighted(r, "precision"), _weighted(r, "recall"), r.weighted_f1) for r in reports],
            report.n,
        )
    )
    return "\n".join(lines)
