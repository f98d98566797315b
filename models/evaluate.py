"""Score a model on labelled data, beside the lexicon baseline; write JSON and a confusion plot."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from infra.errors import ConfigError, ModelError
from models.data import Example, load_csv
from models.metrics import Report, classification_report, format_report
from models.rows import Rows, select_rows
from models.taxonomy import TASKS, TOPICS


class Scorer(Protocol):
    """Gives sentiment and event probabilities of texts (``InferenceEngine`` is one)."""

    @property
    def version(self) -> str:
        """The model name and version."""
        ...

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (n, 3) sentiment probabilities and (n, 20) event probabilities over TOPICS."""
        ...


def single_class(report: Report) -> str | None:
    """The one label predicted for every row, where there are two rows or more; else None."""
    predicted = np.asarray(report.confusion).reshape(len(report.labels), -1).sum(axis=0)
    used = np.flatnonzero(predicted)
    if report.n < 2 or len(used) != 1:
        return None
    return report.labels[int(used[0])]


def _labels(task: str) -> tuple[str, ...]:
    labels = TASKS.get(task)
    if labels is None:
        msg = f"unknown task {task!r}: use one of {', '.join(TASKS)}"
        raise ConfigError(msg)
    return labels


def topic_columns(scorer: Scorer) -> list[int] | None:
    """Where each of TOPICS sits among the scorer's event columns; None when in TOPICS order.

    A scorer may name its columns in an ``event_labels`` attribute (the engine does, after its
    artifact); without one they are taken to be TOPICS.

    Raises:
        ModelError: the scorer lacks some of TOPICS.
    """
    names = list(getattr(scorer, "event_labels", TOPICS))
    if names == list(TOPICS):
        return None
    missing = [topic for topic in TOPICS if topic not in names]
    if missing:
        msg = f"the model has no event labels {', '.join(missing)}"
        raise ModelError(msg)
    return [names.index(topic) for topic in TOPICS]


def evaluate(scorer: Scorer, examples: list[Example], task: str, batch: int = 256) -> Report:
    """Predict each example's label as the argmax of the task's probabilities and score them.

    Raises:
        ModelError: the scorer returned probabilities of the wrong shape.
    """
    labels = _labels(task)
    head = 0 if task == "sentiment" else 1
    columns = topic_columns(scorer) if task == "event" else None
    size = max(1, batch)
    predicted: list[int] = []
    for start in range(0, len(examples), size):
        texts = [e.text for e in examples[start : start + size]]
        probs = np.asarray(scorer.probabilities(texts)[head])
        if columns is not None and probs.ndim == 2:
            probs = probs[:, columns]
        expected = (len(texts), len(labels))
        if probs.shape != expected:
            msg = f"{task} probabilities of shape {probs.shape}, expected {expected}"
            raise ModelError(msg)
        predicted.extend(int(i) for i in probs.argmax(axis=1))
    return classification_report([e.label for e in examples], predicted, labels)


def evaluate_lexicon(examples: list[Example], task: str) -> Report | None:
    """Score the lexicon baseline on sentiment; None for other tasks (it has no event head)."""
    if task != "sentiment":
        return None
    from models.lexicon import LexiconClassifier  # noqa: PLC0415 - loads the word lists

    scores = LexiconClassifier().classify([e.text for e in examples])
    predicted = [int(np.argmax(s.probs)) for s in scores]
    return classification_report([e.label for e in examples], predicted, TASKS[task])


def plot_confusion(report: Report, path: Path, title: str) -> None:
    """Save the confusion matrix as a PNG: colour is the share of each true row, text the count."""
    # The Figure API with no pyplot: no global backend state, no GUI, safe in threads.
    from matplotlib.figure import Figure  # noqa: PLC0415 - slow import, only when plotting

    counts = np.asarray(report.confusion, dtype=np.float64).reshape(len(report.labels), -1)
    k = len(report.labels)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows != 0)
    side = max(4.5, 0.42 * k + 3.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true label's examples")
    font = 9 if k <= 10 else 6.5
    for i in range(k):
        for j in range(k):
            # Zeros would bury the few errors that matter in a large matrix; small ones show all.
            if counts[i, j] or k <= 10:
                colour = "white" if shares[i, j] > 0.5 else "black"
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=font,
                    color=colour,
                )
    support = [s.support for s in report.per_class.values()]
    ax.set_xticks(range(k), report.labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(
        range(k), [f"{label} ({n})" for label, n in zip(report.labels, support, strict=True)]
    )
    ax.tick_params(labelsize=font + 0.5)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (support)")
    ax.set_title(
        f"{title}\naccuracy {report.accuracy:.3f}, macro F1 {report.macro_f1:.3f}, n={report.n}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


@dataclass
class Evaluation:
    """What ``run_eval`` found: the text to print and the warnings for stderr."""

    text: str
    warnings: list[str]


def run_eval(
    model_path: Path,
    data: Path,
    task: str,
    json_out: Path | None,
    plot_out: Path | None,
    engine_factory: Callable[[Path], Scorer],
    batch: int = 256,
    split: str | None = None,
    baseline: bool = True,
) -> Evaluation:
    """Evaluate a model on rows of a labelled CSV beside the lexicon; write JSON and a plot.

    The data is read and the rows chosen (``select_rows``) before the model loads, so a bad
    file or split fails fast. Warnings: rows the model was trained on, a changed file, a
    model that predicts one class for every row.

    Args:
        split: test, validation, train or all; None picks as ``select_rows`` says.
        baseline: score the lexicon on the same rows beside the model.

    Raises:
        ConfigError: the CSV is missing, malformed, empty or has labels the task lacks, or
            the split cannot be re-created.
        ModelError: the model cannot load or score.
    """
    examples = load_csv(data, task)
    if not examples:
        msg = f"{data}: no labelled texts"
        raise ConfigError(msg)
    rows = select_rows(model_path, data, split, examples)
    if not rows.examples:
        msg = f"{data}: the {rows.split} split has no rows"
        raise ConfigError(msg)
    scorer = engine_factory(model_path)
    report = evaluate(scorer, rows.examples, task, batch)
    lexicon = evaluate_lexicon(rows.examples, task) if baseline else None
    warnings = list(rows.warnings)
    only = single_class(report)
    if only is not None:
        warnings.append(f"warning: the model predicted {only!r} for every row")
    lines = [
        f"model {scorer.version} on {data} ({report.n} examples, task {task})",
        rows.description,
        "",
        format_report(report, lexicon, baseline_name="lexicon"),
    ]
    notes = []
    if baseline and lexicon is None:
        notes.append("lexicon baseline: none for this task (the lexicon has no event head)")
    outputs = _Outputs(scorer.version, data, task, rows, warnings)
    notes += outputs.write(report, lexicon, json_out, plot_out)
    if notes:
        lines += ["", *notes]
    return Evaluation("\n".join(lines), warnings)


@dataclass(frozen=True)
class _Outputs:
    """What an evaluation's JSON and plot name besides the reports."""

    model: str
    data: Path
    task: str
    rows: Rows
    warnings: list[str]

    def write(
        self,
        report: Report,
        lexicon: Report | None,
        json_out: Path | None,
        plot_out: Path | None,
    ) -> list[str]:
        """Write the JSON and the confusion plot asked for; return a note per file written.

        Raises:
            ConfigError: a file cannot be written.
        """
        notes = []
        try:
            if json_out is not None:
                json_out.parent.mkdir(parents=True, exist_ok=True)
                text = json.dumps(self.payload(report, lexicon), indent=2) + "\n"
                json_out.write_text(text, encoding="utf-8")
                notes.append(f"wrote {json_out}")
            if plot_out is not None:
                title = f"{self.task}: {self.model}, split {self.rows.split}"
                plot_confusion(report, plot_out, title)
                notes.append(f"wrote {plot_out}")
        except OSError as exc:
            msg = f"cannot write the evaluation output: {exc}"
            raise ConfigError(msg) from exc
        return notes

    def payload(self, report: Report, lexicon: Report | None) -> dict[str, Any]:
        """Return the JSON of an evaluation: the report, what was scored, the baseline."""
        return {
            **report.to_json(),
            "task": self.task,
            "model": self.model,
            "data": str(self.data),
            "split": self.rows.split,
            "train_overlap": self.rows.train_overlap,
            "overlap_unchecked": self.rows.unchecked,
            "warnings": self.warnings,
            "baseline": None if lexicon is None else {"name": "lexicon", **lexicon.to_json()},
        }
