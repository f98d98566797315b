"""The classifier interface every scoring model implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class TextScore:
    """Sentiment and event scores of one text.

    Args:
        probs: probabilities of negative, neutral and positive, summing to 1.
        event_type: the most likely event type, ``none`` when there is none.
        event_prob: the probability of that event type.
    """

    probs: tuple[float, float, float]
    event_type: str = "none"
    event_prob: float = 0.0

    @property
    def label(self) -> str:
        """The most likely sentiment label."""
        return LABELS[max(range(3), key=self.probs.__getitem__)]

    @property
    def score(self) -> float:
        """p(positive) - p(negative), in [-1, 1]."""
        return self.probs[2] - self.probs[0]


class Classifier(Protocol):
    """Scores a batch of texts; blocking, so callers run it off the event loop."""

    @property
    def version(self) -> str:
        """A string naming the model and its version, stored with every score."""
        ...

    def classify(self, texts: Sequence[str]) -> list[TextScore]:
        """Score each text, in order."""
        ...
