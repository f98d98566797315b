"""The ingest scheduler: first runs at once, one run per source at a time, clean shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

from ingest.config import SourceSpec
from ingest.runner import RunResult
from ingest.scheduler import IngestScheduler
from streams.counters import Counters


class SlowIngestor:
    """Stands in for `Ingestor`: each run takes a while and records overlap."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.counters = Counters()
        self.running: dict[str, int] = {}
        self.most_at_once: dict[str, int] = {}
        self.finished: list[str] = []
        self._lock = threading.Lock()

    def run(self, source: Any) -> RunResult:
        with self._lock:
            self.running[source.name] = self.running.get(source.name, 0) + 1
            self.most_at_once[source.name] = max(
                self.most_at_once.get(source.name, 0), self.running[source.name]
            )
        time.sleep(self.seconds)
        with self._lock:
            self.running[source.name] -= 1
            self.finished.append(source.name)
        return RunResult(source.name, documents=1)


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def specs(*names: str, interval: float) -> list[SourceSpec]:
    return [SourceSpec(name=n, kind="rss", url="u", interval=interval, jitter=0) for n in names]


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def test_every_source_runs_at_once_then_on_its_interval() -> None:
    ingestor = SlowIngestor(0.0)
    results: list[RunResult] = []
    scheduler = IngestScheduler(
        ingestor,  # type: ignore[arg-type]
        specs("a", "b", interval=0.2),
        {"a": Named("a"), "b": Named("b")},  # type: ignore[dict-item]
        on_run=results.append,
    )
    scheduler.start()
    try:
        wait_for(lambda: ingestor.finished.count("a") >= 3 and "b" in ingestor.finished)
    finally:
        scheduler.stop()
    assert all(r.documents == 1 for r in results)


def test_a_slow_source_never_overlaps_itself_and_shutdown_waits_for_it() -> None:
    ingestor = SlowIngestor(0.6)
    scheduler = IngestScheduler(
        ingestor,  # type: ignore[arg-type]
        specs("slow", interval=0.1),
        {"slow": Named("slow")},  # type: ignore[dict-item]
    )
    scheduler.start()
    wait_for(lambda: ingestor.finished.count("slow") >= 2)
    wait_for(lambda: ingestor.running.get("slow") == 1)  # a third run is in progress
    scheduler.stop(wait=True)
    assert ingestor.running["slow"] == 0  # stop() returned after that run finished
    assert ingestor.most_at_once["slow"] == 1
    assert ingestor.counters.get("ingest.skipped.still_running") >= 1
