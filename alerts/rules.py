"""Alert rules: decide from a ticker's signal whether an alert fires or resolves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.records import Alert, Signal, stable_id, utcnow


@dataclass(frozen=True)
class ThresholdRule:
    """Fire when a ticker's window mean score falls to ``threshold`` over at least
    ``min_docs`` documents; resolve once it climbs back above ``threshold + hysteresis``.

    The hysteresis keeps a mean hovering at the threshold from firing again and again.
    """

    threshold: float = -0.3
    min_docs: int = 3
    hysteresis: float = 0.05
    name: str = "mean_score_below"

    def fingerprint(self, ticker: str) -> str:
        """The identity of this rule on this ticker."""
        return stable_id("alert", self.name, ticker)

    def evaluate(
        self, signal: Signal, state: dict[str, Any] | None
    ) -> tuple[Alert | None, dict[str, Any] | None]:
        """Return the alert to send (if the state changes) and the rule's new state."""
        breach = signal.documents >= self.min_docs and signal.mean_score <= self.threshold
        if state is None and breach:
            alert = self._alert(signal, "firing", None)
            return alert, {"alert_id": alert.alert_id, "fired_at": alert.fired_at.isoformat()}
        if state is not None and signal.mean_score > self.threshold + self.hysteresis:
            return self._alert(signal, "resolved", state), None
        return None, state

    def _alert(self, signal: Signal, state: str, firing: dict[str, Any] | None) -> Alert:
        fingerprint = self.fingerprint(signal.ticker)
        if firing is None:
            # While the window end stands, each signal adds one document, so (end, count)
            # names one signal: a redelivery keeps its id, a later incident gets a new one.
            alert_id = stable_id(fingerprint, signal.window_end.isoformat(), str(signal.documents))
            fired_at = utcnow()
        else:
            alert_id = str(firing["alert_id"])
            fired_at = datetime.fromisoformat(str(firing["fired_at"]))
        negatives = round(signal.negative_share * signal.documents)
        if state == "firing":
            explanation = (
                f"{signal.ticker} mean sentiment {signal.mean_score:+.3f} over "
                f"{signal.documents} documents is at or below {self.threshold:+.3f}; "
                f"{negatives} of {signal.documents} are negative."
            )
        else:
            explanation = (
                f"{signal.ticker} mean sentiment recovered to {signal.mean_score:+.3f} over "
                f"{signal.documents} documents, above {self.threshold + self.hysteresis:+.3f}."
            )
        severe = signal.mean_score <= self.threshold - 0.3
        return Alert(
            alert_id=alert_id,
            fingerprint=fingerprint,
            rule=self.name,
            severity="critical" if severe and state == "firing" else "warning",
            ticker=signal.ticker,
            fired_at=fired_at,
            value=signal.mean_score,
            threshold=self.threshold,
            window_start=signal.window_start,
            window_end=signal.window_end,
            documents=signal.documents,
            explanation=explanation,
            evidence=signal.worst,
            state=state,  # type: ignore[arg-type]
        )
