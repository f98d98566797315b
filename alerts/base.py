"""The Notifier interface: deliver one alert somewhere, say how it went."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

from infra.errors import DeliveryError
from streams.records import Alert, Delivery, utcnow

# The channels a worker can build a notifier for (surveil.compose.worker._notifiers): a rule naming
# any other would never be delivered, so the rules file refuses it.
CHANNELS: tuple[str, ...] = ("slack", "email")


class Notifier(Protocol):
    """A channel alerts are delivered to (Slack, email). Blocking; run off the loop."""

    name: str

    def send(self, alert: Alert) -> Delivery:
        """Deliver the alert once; report a failure as `failed` does, never raise for one."""
        ...


def failed(error: DeliveryError, at: datetime | None = None) -> Delivery:
    """Report a delivery that failed: the outbox stores it and tries again later.

    The detail says how long the receiver asked to wait, if it did.

    Args:
        at: when it failed; now by default.
    """
    detail = error.detail
    if error.retry_after is not None:
        detail = f"retry after {math.ceil(error.retry_after)}s: {detail}"
    return Delivery(
        channel=error.channel,
        ok=False,
        status=error.status,
        detail=detail,
        retry_after=error.retry_after,
        at=at or utcnow(),
    )
