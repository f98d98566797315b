"""Send what the alert outbox holds, with its retries, in a thread of the worker.

A notification still undelivered ``late_after`` seconds after it was put is reported once,
loudly (an ERROR log, ``alerts.delivery_late``, and "late" in ``surveil alerts list``), and
copied to the fallback channel when one is configured. The outbox goes on retrying it
until it is delivered or given up (``failed``, shown as undeliverable).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from alerts.base import Notifier, failed
from alerts.outbox import Outbox, Pending
from infra.errors import ConfigError, DeliveryError
from streams.counters import Counters
from streams.records import Delivery, utcnow

log = logging.getLogger(__name__)


class Deliverer:
    """Deliver what the outbox holds, in a daemon thread or one pass at a time.

    A notifier that fails or raises costs one recorded attempt; the loop goes on.

    Args:
        outbox: where notifications wait.
        notifiers: by channel name (the names given to `Outbox.put`).
        clock: the current time.
        sleep: waits between passes; by default a wait that `stop` interrupts.
        interval: seconds between passes of the thread.
        counters: counts ``alerts.delivered``, ``alerts.delivery_failed``,
            ``alerts.delivery_late``, ``alerts.delivery_fallback``,
            ``alerts.delivery_gave_up`` and ``alerts.deliverer_errors``.
        late_after: seconds after which an undelivered notification is reported late.
        fallback: the channel late notifications are also sent to (None: none).

    Raises:
        ConfigError: the fallback channel has no notifier.
    """

    def __init__(
        self,
        outbox: Outbox,
        notifiers: Mapping[str, Notifier],
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], object] | None = None,
        *,
        interval: float = 1.0,
        counters: Counters | None = None,
        late_after: float = 600.0,
        fallback: str | None = None,
    ) -> None:
        if fallback is not None and fallback not in notifiers:
            known = ", ".join(notifiers) or "none"
            msg = f"alert fallback channel {fallback!r} is not configured (configured: {known})"
            raise ConfigError(msg)
        self._late_after = late_after
        self._fallback = fallback
        self._outbox = outbox
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._stopping = threading.Event()
        self._kick = threading.Event()
        self._sleep = sleep if sleep is not None else self._nap
        self._interval = interval
        self._counters = counters if counters is not None else Counters()
        self._pass = threading.Lock()  # one pass at a time: a row is never sent twice at once
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> int:
        """Attempt every notification due at ``now``; return how many attempts were made."""
        with self._pass:
            for late in self._outbox.late(now, self._late_after):
                self._escalate(late, now)
            due = self._outbox.due(now)
            for pending in due:
                delivery = self._send(pending, now)
                status = self._outbox.record(pending, delivery, now)
                if delivery.ok:
                    self._counters.inc("alerts.delivered")
                    continue
                self._counters.inc("alerts.delivery_failed")
                attempt = f"{pending.key} to {pending.channel} (attempt {pending.attempts + 1})"
                log.warning("alert %s failed: %s %s", attempt, delivery.status, delivery.detail)
                if status == "failed":
                    self._counters.inc("alerts.delivery_gave_up")
                    log.error(
                        "alert %s to %s: undeliverable, giving up after %d attempts",
                        pending.key,
                        pending.channel,
                        pending.attempts + 1,
                    )
            return len(due)

    def _escalate(self, late: Pending, now: datetime) -> None:
        self._counters.inc("alerts.delivery_late")
        age = (now - late.created).total_seconds() if late.created else self._late_after
        to = self._fallback if self._fallback not in (None, late.channel) else None
        copied = to is not None and self._outbox.reroute(late, to)
        if copied:
            self._counters.inc("alerts.delivery_fallback")
        log.error(
            "alert %s to %s still undelivered after %.0f s and %d attempts%s; still retrying",
            late.key,
            late.channel,
            age,
            late.attempts,
            f"; copied to the fallback channel {to}" if copied else "",
        )

    def _send(self, pending: Pending, now: datetime) -> Delivery:
        notifier = self._notifiers.get(pending.channel)
        if notifier is None:
            return failed(DeliveryError("no notifier", channel=pending.channel), now)
        try:
            return notifier.send(pending.alert)
        except Exception as exc:  # a notifier must not raise; one that does costs an attempt
            log.exception("notifier %s raised on %s", pending.channel, pending.key)
            detail = f"{type(exc).__name__}: {exc}"[:500]
            return failed(DeliveryError(detail, channel=pending.channel), now)

    def start(self) -> None:
        """Run `run_once` in a daemon thread every ``interval`` seconds until `stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="surveil-deliverer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Start the next pass now (a notification was just put), not at the next interval."""
        self._kick.set()

    def _nap(self, seconds: float) -> None:
        self._kick.wait(seconds)
        self._kick.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current pass."""
        self._stopping.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once(self._clock())
            except Exception:  # the store may be briefly locked by the CLI: try next pass
                self._counters.inc("alerts.deliverer_errors")
                log.exception("alert deliverer pass failed")
            self._sleep(self._interval)
