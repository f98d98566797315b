"""Pick a classifier by name: ``lexicon`` or the path of a trained artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.errors import ConfigError
from models.base import Classifier
from models.lexicon import LexiconClassifier


@dataclass(frozen=True)
class Runtime:
    """Where and how a trained model runs (the engine's settings)."""

    device: str = "auto"
    threads: int | None = None
    precision: str = "auto"
    max_batch: int = 64


def load_classifier(name: str, runtime: Runtime | None = None) -> Classifier:
    """Return the classifier the ``model`` setting names.

    Args:
        name: ``lexicon``, or a folder written by ``surveil train``.
        runtime: device, threads, precision and batch size of a trained model.
    """
    if name == "lexicon":
        return LexiconClassifier()
    path = Path(name)
    from models.artifact import is_artifact  # noqa: PLC0415 - torch only when needed

    if not path.is_dir() or not is_artifact(path):
        msg = f"model {name!r} is neither 'lexicon' nor a trained artifact folder"
        raise ConfigError(msg)
    from models.engine import EngineConfig, InferenceEngine  # noqa: PLC0415

    rt = runtime or Runtime()
    config = EngineConfig(
        device=rt.device, threads=rt.threads, precision=rt.precision, max_batch=rt.max_batch
    )
    return InferenceEngine.from_path(path, config)
