"""Pick a classifier by name: ``lexicon`` or the path of a trained artifact."""

from __future__ import annotations

from pathlib import Path

from infra.errors import ConfigError
from models.base import Classifier
from models.lexicon import LexiconClassifier


def load_classifier(name: str) -> Classifier:
    """Return the classifier the ``model`` setting names.

    Args:
        name: ``lexicon``, or a folder written by ``surveil train``.
    """
    if name == "lexicon":
        return LexiconClassifier()
    path = Path(name)
    if not path.is_dir():
        msg = f"model {name!r} is neither 'lexicon' nor a trained artifact folder"
        raise ConfigError(msg)
    msg = f"trained artifacts are not supported yet (issue #3); got {path}"
    raise ConfigError(msg)
