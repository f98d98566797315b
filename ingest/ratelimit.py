"""Spacing the requests to each host, so no source breaks a host's rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from infra.errors import ConfigError


class HostRateLimiter:
    """Space the requests to each host at least ``1 / rate`` seconds apart (thread-safe).

    A minimum interval rather than a token bucket: a bucket allows bursts, and SEC counts
    requests per second, so a burst after an idle spell could break its 10/s limit.

    Args:
        rates: requests per second per host name; hosts not listed get ``default_rate``.
        default_rate: requests per second for other hosts.
        clock: monotonic seconds.
        sleep: blocks for the given seconds.
    """

    def __init__(
        self,
        rates: Mapping[str, float],
        default_rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for host, rate in {**rates, "default": default_rate}.items():
            if rate <= 0:
                msg = f"rate limit of {host} must be above 0 requests/s, got {rate}"
                raise ConfigError(msg)
        self._intervals = {host.lower(): 1.0 / rate for host, rate in rates.items()}
        self._default_interval = 1.0 / default_rate
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, host: str) -> float:
        """Wait for the next free slot of ``host``; return the seconds waited."""
        host = host.lower()
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._intervals.get(host, self._default_interval)
        # The slot is reserved under the lock and slept on outside it, so threads bound
        # for other hosts are never held up by this one.
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return max(delay, 0.0)
