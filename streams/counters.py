"""Named counters of what each stage did, served on the worker's web page."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Thread-safe counters (agents run on the loop, stores in worker threads)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def inc(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        with self._lock:
            self._counts[name] += amount

    def get(self, name: str) -> int:
        """Return one counter's value."""
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """Return every counter, sorted by name."""
        with self._lock:
            return dict(sorted(self._counts.items()))
