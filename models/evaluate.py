"""Score a model on labelled data, beside the lexicon baseline; write JSON and a confusion plot."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from infra.errors import ConfigError, ModelError
from models.data import DATASETS, Example, Split, file_sha256, load_csv, load_split
from models.metrics import Report, classification_report, format_report
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


# Which rows of the data file to score; "validation" is the split training calls val.
SPLITS = ("test", "validation", "train", "all")


@dataclass(frozen=True)
class TrainedOn:
    """An artifact's record of its training data: files and their sha256, seed, row limit."""

    files: dict[str, str]
    seed: int
    limit: int | None
    data_dir: Path | None

    @classmethod
    def read(cls, model_path: Path) -> TrainedOn | None:
        """Read config.json and data.json of an artifact; None where either is absent.

        Raises:
            ModelError: either file is unreadable or malformed.
        """
        config_path, data_path = model_path / "config.json", model_path / "data.json"
        if not (config_path.is_file() and data_path.is_file()):
            return None
        try:
            config = json.loads(config_path.read_text("utf-8"))
            data = json.loads(data_path.read_text("utf-8"))
            files = {str(name): str(info["sha256"]) for name, info in data.items()}
            limit = config.get("limit")
            data_dir = config.get("data_dir")
            return cls(
                files,
                int(config.get("seed", 13)),
                None if limit is None else int(limit),
                None if data_dir is None else Path(data_dir),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            msg = f"{model_path}: cannot read its training record: {exc}"
            raise ModelError(msg) from exc


@dataclass
class Rows:
    """The rows chosen to score, what training saw of them, and what to tell the user."""

    split: str
    examples: list[Example]
    description: str
    train_overlap: int | None
    unchecked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def text_hash(text: str) -> str:
    """The sha256 of a text, by which scored rows are matched to training rows."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _part(split: Split, name: str) -> list[Example]:
    return {"test": split.test, "validation": split.val, "train": split.train}[name]


def select_rows(model_path: Path, data: Path, split: str | None, examples: list[Example]) -> Rows:
    """Choose the rows of ``data`` to score and count those the model was trained on.

    ``split`` None means ``test`` when ``data`` is one of the artifact's own training files
    (same name and sha256), else ``all``. Training rows are re-created from the artifact's
    record (seed, limit, files), from ``data`` itself or from the recorded data folder.

    Args:
        examples: every labelled row of ``data``, as ``load_csv`` read it.

    Raises:
        ConfigError: ``split`` is unknown, or is not ``all`` while the model records no
            training data, ``data`` is not one of its files, or the file has changed.
        ModelError: the artifact's record is malformed.
    """
    if split is not None and split not in SPLITS:
        msg = f"unknown split {split!r}: use one of {', '.join(SPLITS)}"
        raise ConfigError(msg)
    record = TrainedOn.read(model_path)
    if record is None:
        if split not in (None, "all"):
            msg = (
                f"--split {split} needs a trained model artifact, whose record re-creates the "
                f"split: {model_path} has no training rows; use --split all"
            )
            raise ConfigError(msg)
        return Rows("all", examples, f"split all: every row ({len(examples):,})", None)
    recorded = record.files.get(data.name)
    digest = file_sha256(data) if recorded is not None else None
    own = recorded is not None and digest == recorded and data.name in DATASETS
    changed = recorded is not None and not own
    chosen = split or ("test" if own else "all")
    warnings = []
    if changed:
        warnings.append(
            f"warning: {data} differs from the {data.name} this model was trained on "
            f"(sha256 {str(digest)[:12]}..., recorded {str(recorded)[:12]}...)"
        )
    if chosen != "all" and not own:
        if changed:
            msg = (
                f"--split {chosen}: {data} differs from the {data.name} this model was trained "
                f"on (sha256 {str(digest)[:12]}..., recorded {str(recorded)[:12]}...), so its "
                "split would not be the artifact's; use --split all"
            )
        else:
            msg = (
                f"--split {chosen}: {data.name} is not one of this model's training files "
                f"({', '.join(record.files)}); use --split all"
            )
        raise ConfigError(msg)
    trained: set[str] = set()
    unchecked = []
    own_split = None
    for name, sha in record.files.items():
        path = data if own and name == data.name else _recorded_file(record, name, sha)
        if path is None or name not in DATASETS:
            unchecked.append(name)
            continue
        parts = load_split(path, DATASETS[name], record.seed, record.limit)
        trained |= {text_hash(e.text) for e in parts.train}
        if own and name == data.name:
            own_split = parts
    if own_split is not None and chosen != "all":
        rows = _part(own_split, chosen)
        held = {"test": "held-out", "validation": "validation", "train": "training"}[chosen]
        limit = "" if record.limit is None else f", limit {record.limit}"
        description = (
            f"split {chosen}: the model's {held} rows of {data.name} ({len(rows):,} of "
            f"{len(examples):,}; seed {record.seed}{limit})"
        )
    else:
        rows = examples
        why = ""
        if split is None:
            why = "; the file has changed since training" if changed else "; not a training file"
        description = f"split all: every row ({len(rows):,}){why}"
    if own and chosen == "test":
        description += "; --split all for every row"
    overlap = sum(text_hash(e.text) in trained for e in rows)
    if overlap:
        advice = "use --split test" if own else "they are not held-out"
        warnings.append(
            f"warning: {overlap:,} of {len(rows):,} rows were used to train this model; {advice}"
        )
    if unchecked:
        warnings.append(
            f"warning: cannot check for training rows of {', '.join(unchecked)}: the file is "
            f"not at {record.data_dir} or has changed since training"
        )
    return Rows(chosen, rows, description, overlap, unchecked, warnings)


def _recorded_file(record: TrainedOn, name: str, sha: str) -> Path | None:
    if record.data_dir is None:
        return None
    path = record.data_dir / name
    return path if path.is_file() and file_sha256(path) == sha else None


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
    try:
        if json_out is not None:
            payload: dict[str, Any] = {
                **report.to_json(),
                "task": task,
                "model": scorer.version,
                "data": str(data),
                "split": rows.split,
                "train_overlap": rows.train_overlap,
                "overlap_unchecked": rows.unchecked,
                "warnings": warnings,
                "baseline": None if lexicon is None else {"name": "lexicon", **lexicon.to_json()},
            }
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            notes.append(f"wrote {json_out}")
        if plot_out is not None:
            plot_confusion(report, plot_out, f"{task}: {scorer.version}, split {rows.split}")
            notes.append(f"wrote {plot_out}")
    except OSError as exc:
        msg = f"cannot write the evaluation output: {exc}"
        raise ConfigError(msg) from exc
    if notes:
        lines += ["", *notes]
    return Evaluation("\n".join(lines), warnings)
