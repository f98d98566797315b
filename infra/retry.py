"""The retry policy: capped exponential backoff with full jitter, floored by Retry-After.

One policy serves every retry of surveil (a failing write of an agent, a fetch, a delivery):
the n-th wait is uniform between 0 and ``min(cap, base * 2**(n-1))``, and never shorter than
what the other side asked for.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter.

    Args:
        base: the first wait's ceiling in seconds; each retry doubles it.
        cap: the largest ceiling in seconds.
        rand: a number in [0, 1) for the jitter (a constant makes waits predictable in tests).
    """

    base: float = 0.5
    cap: float = 30.0
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            msg = f"backoff needs base > 0 and cap >= base, got base {self.base}, cap {self.cap}"
            raise ValueError(msg)

    def ceiling(self, attempt: int) -> float:
        """Return the largest wait after ``attempt`` failed attempts (1 for the first)."""
        return min(self.cap, self.base * 2.0 ** min(max(attempt - 1, 0), 62))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the wait in seconds after ``attempt`` failed attempts.

        Args:
            attempt: failed attempts so far, 1 for the first.
            retry_after: what the other side asked for (HTTP Retry-After): a floor.
        """
        return max(self.rand() * self.ceiling(attempt), retry_after or 0.0)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After header asks to wait, or None if absent or bad.

    Args:
        value: the header: delay seconds (``120``, also ``1.5``) or an HTTP-date.
        now: the current time (aware), to turn an HTTP-date into seconds.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
