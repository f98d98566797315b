"""Choose the rows of a labelled file to score, and count those a model was trained on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import ConfigError, ModelError
from models.data import DATASETS, Example, Split, file_sha256, load_split

# Which rows of the data file to score; "validation" is the split training calls val.
SPLITS = ("test", "validation", "train", "all")
_HELD = {"test": "held-out", "validation": "validation", "train": "training"}


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

    def file_at(self, name: str) -> Path | None:
        """Return the recorded data folder's copy of a training file, if it is unchanged."""
        if self.data_dir is None:
            return None
        path = self.data_dir / name
        return path if path.is_file() and file_sha256(path) == self.files[name] else None


@dataclass
class Rows:
    """The rows chosen to score, what training saw of them, and what to tell the user."""

    split: str
    examples: list[Example]
    description: str
    train_overlap: int | None
    unchecked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Seen:
    """The training rows a record re-creates, and the files it could not re-create."""

    hashes: set[str]
    unchecked: list[str]
    own_split: Split | None


def text_hash(text: str) -> str:
    """Return the sha256 of a text, by which scored rows are matched to training rows."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    differs = None
    if recorded is not None and not own:
        differs = (
            f"{data} differs from the {data.name} this model was trained on "
            f"(sha256 {str(digest)[:12]}..., recorded {str(recorded)[:12]}...)"
        )
    chosen = split or ("test" if own else "all")
    if chosen != "all" and not own:
        raise ConfigError(_not_a_training_split(chosen, data, record, differs))
    seen = _seen(record, data if own else None)
    rows, description = _chosen(chosen, split, examples, data, record, seen, differs)
    warnings = [] if differs is None else [f"warning: {differs}"]
    overlap = sum(text_hash(e.text) in seen.hashes for e in rows)
    if overlap:
        advice = "use --split test" if own else "they are not held-out"
        warnings.append(
            f"warning: {overlap:,} of {len(rows):,} rows were used to train this model; {advice}"
        )
    if seen.unchecked:
        warnings.append(
            f"warning: cannot check for training rows of {', '.join(seen.unchecked)}: the file "
            f"is not at {record.data_dir} or has changed since training"
        )
    return Rows(chosen, rows, description, overlap, seen.unchecked, warnings)


def _not_a_training_split(chosen: str, data: Path, record: TrainedOn, differs: str | None) -> str:
    if differs is not None:
        return (
            f"--split {chosen}: {differs}, so its split would not be the artifact's; "
            "use --split all"
        )
    return (
        f"--split {chosen}: {data.name} is not one of this model's training files "
        f"({', '.join(record.files)}); use --split all"
    )


def _seen(record: TrainedOn, own: Path | None) -> _Seen:
    """Re-create the training rows of every recorded file; ``own`` is ``data`` if it is one."""
    hashes: set[str] = set()
    unchecked = []
    own_split = None
    for name in record.files:
        path = own if own is not None and name == own.name else record.file_at(name)
        if path is None or name not in DATASETS:
            unchecked.append(name)
            continue
        parts = load_split(path, DATASETS[name], record.seed, record.limit)
        hashes |= {text_hash(e.text) for e in parts.train}
        if own is not None and name == own.name:
            own_split = parts
    return _Seen(hashes, unchecked, own_split)


def _chosen(
    chosen: str,
    split: str | None,
    examples: list[Example],
    data: Path,
    record: TrainedOn,
    seen: _Seen,
    differs: str | None,
) -> tuple[list[Example], str]:
    """Return the rows of the chosen split and the line that describes them."""
    if seen.own_split is not None and chosen != "all":
        rows = {"test": seen.own_split.test, "validation": seen.own_split.val}.get(
            chosen, seen.own_split.train
        )
        limit = "" if record.limit is None else f", limit {record.limit}"
        description = (
            f"split {chosen}: the model's {_HELD[chosen]} rows of {data.name} ({len(rows):,} of "
            f"{len(examples):,}; seed {record.seed}{limit})"
        )
    else:
        rows = examples
        why = ""
        if split is None:
            why = "; the file has changed since training" if differs else "; not a training file"
        description = f"split all: every row ({len(rows):,}){why}"
    if seen.own_split is not None and chosen == "test":
        description += "; --split all for every row"
    return rows, description
