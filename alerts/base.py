"""The Notifier interface: deliver one alert somewhere, say how it went."""

from __future__ import annotations

from typing import Protocol

from streams.records import Alert, Delivery


class Notifier(Protocol):
    """A channel alerts are delivered to (Slack, email). Blocking; run off the loop."""

    name: str

    def send(self, alert: Alert) -> Delivery:
        """Deliver the alert once; never raise for a delivery failure, report it."""
        ...
