"""The Notifier interface: deliver one alert somewhere, say how it went."""

from __future__ import annotations

from typing import Protocol

from streams.records import Alert, Delivery

# The channels a worker can build a notifier for (surveil.worker._notifiers): a rule naming
# any other would never be delivered, so the rules file refuses it.
CHANNELS: tuple[str, ...] = ("slack", "email")


class Notifier(Protocol):
    """A channel alerts are delivered to (Slack, email). Blocking; run off the loop."""

    name: str

    def send(self, alert: Alert) -> Delivery:
        """Deliver the alert once; never raise for a delivery failure, report it."""
        ...
