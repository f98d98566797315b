"""Where a replay's alerts go: kept in memory with a ``dry-run`` delivery, never sent.

It stands in for the SQLite `alerts.outbox.Outbox` behind `alerts.engine.AlertEngine`, so a
replay runs the engine the worker runs (rules, router, due notifications) and differs only
in where the notifications land. No silences: a replay decides what would have been sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from alerts.outbox import Put, StateRow
from streams.records import Alert, Delivery

DRY_RUN = Delivery(channel="dry-run", ok=True, detail="replay: recorded, never sent")


class DryRunOutbox:
    """Keep each new notification once, as an alert delivered to ``dry-run``."""

    path = Path("(replay: in memory)")

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._taken: list[Alert] = []

    def is_silenced(self, ticker: str, rule: str, now: datetime) -> bool:
        """Nothing is silenced in a replay."""
        return False

    def router_state(self) -> list[tuple[str, str, str, str]]:
        """A replay starts with an empty router."""
        return []

    def commit(self, puts: Sequence[Put], state: Sequence[StateRow] = ()) -> list[bool]:
        """Keep the new notifications; say which were new."""
        new = []
        for put in puts:
            fresh = put.key not in self._keys
            if fresh:
                self._keys.add(put.key)
                self._taken.append(put.alert.model_copy(update={"deliveries": (DRY_RUN,)}))
            new.append(fresh)
        return new

    def take(self) -> list[Alert]:
        """Return the alerts kept since the last call."""
        taken, self._taken = self._taken, []
        return taken

    def unpublished(self) -> list[tuple[str, Alert]]:
        """Nothing goes to Kafka from a replay."""
        return []

    def mark_published(self, keys: Sequence[str]) -> None:
        """Nothing goes to Kafka from a replay."""
