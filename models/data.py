"""Labelled CSV data (``text,label``): loading, validation and stratified seeded splits."""

from __future__ import annotations

import csv
import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.errors import ConfigError
from models.taxonomy import TASKS

# Which task each bundled data set trains.
DATASETS: dict[str, str] = {
    "fpb_sentiment.csv": "sentiment",
    "tfns_sentiment.csv": "sentiment",
    "tfn_topics.csv": "event",
}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text for one task."""

    text: str
    task: str
    label: int
    dataset: str


@dataclass(frozen=True)
class Split:
    """Train, validation and test examples of one data set."""

    train: list[Example]
    val: list[Example]
    test: list[Example]


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file, recorded with every model trained on it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_csv(path: Path, task: str) -> list[Example]:
    """Read a ``text,label`` CSV for a task.

    Raises:
        ConfigError: the file is missing, lacks the columns, or has labels the task does
            not know (all of them are named).
    """
    labels = TASKS.get(task)
    if labels is None:
        msg = f"unknown task {task!r}: use one of {', '.join(TASKS)}"
        raise ConfigError(msg)
    index = {label: i for i, label in enumerate(labels)}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
                msg = f"{path}: expected a header with 'text' and 'label' columns"
                raise ConfigError(msg)
            rows = [(row["text"] or "", (row["label"] or "").strip()) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from exc
    unknown = sorted({label for _, label in rows if label not in index})
    if unknown:
        msg = (
            f"{path}: labels not in the {task} task: {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(labels)})"
        )
        raise ConfigError(msg)
    return [Example(text, task, index[label], path.name) for text, label in rows if text.strip()]


def stratified_split(
    examples: Sequence[Example], seed: int = 13, val: float = 0.1, test: float = 0.1
) -> Split:
    """Split per label, so every part keeps the label balance; the same seed, the same split."""
    by_label: dict[int, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    rng = random.Random(seed)  # noqa: S311 - reproducible splits, not secrets
    train_part: list[Example] = []
    val_part: list[Example] = []
    test_part: list[Example] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda e: e.text)
        rng.shuffle(group)
        n_test = max(1, round(len(group) * test)) if len(group) >= 3 else 0
        n_val = max(1, round(len(group) * val)) if len(group) >= 3 else 0
        test_part += group[:n_test]
        val_part += group[n_test : n_test + n_val]
        train_part += group[n_test + n_val :]
    for part in (train_part, val_part, test_part):
        rng.shuffle(part)
    return Split(train_part, val_part, test_part)


def load_datasets(
    folder: Path, names: Sequence[str] = tuple(DATASETS), seed: int = 13, limit: int | None = None
) -> dict[str, Split]:
    """Load and split each named data set of ``folder`` (default: all three).

    Args:
        limit: keep at most this many rows of each file (a seeded sample), for quick runs.
    """
    splits = {}
    for name in names:
        if name not in DATASETS:
            msg = f"unknown data set {name!r}: use one of {', '.join(DATASETS)}"
            raise ConfigError(msg)
        splits[name] = load_split(folder / name, DATASETS[name], seed, limit)
    return splits


def load_split(path: Path, task: str, seed: int = 13, limit: int | None = None) -> Split:
    """Read one data file and split it as training does: sample ``limit`` rows, then split.

    The same file, seed and limit give the same split, so an artifact's record of them
    re-creates its held-out rows.
    """
    examples = load_csv(path, task)
    if limit is not None and len(examples) > limit:
        examples = random.Random(seed).sample(examples, limit)  # noqa: S311
    return stratified_split(examples, seed)
