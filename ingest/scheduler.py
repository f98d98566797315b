"""Run every source on its own interval with apscheduler, until told to stop.

Each source is one interval job with jitter (so sources on one host do not fire together),
at most one run of a source at a time (``max_instances=1``: a slow run makes the next one
wait, not overlap), missed runs coalesced into one and allowed to start late by up to one
interval (``misfire_grace_time``). The first run of every source starts at once. Shutdown
waits for the runs in progress, so no batch is cut between Kafka and the ingest state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ingest.base import Source
from ingest.config import SourceSpec
from ingest.runner import Ingestor, RunResult
from streams.records import utcnow

log = logging.getLogger(__name__)


class IngestScheduler:
    """Schedule ingest runs of sources.

    Args:
        ingestor: runs one source once.
        specs: the sources with their intervals; disabled ones are skipped.
        sources: the parser of each spec, by name.
        workers: threads running jobs (runs of different sources may overlap).
        on_run: called after every run with its result (logging, tests).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        specs: Sequence[SourceSpec],
        sources: dict[str, Source],
        *,
        workers: int = 4,
        on_run: Callable[[RunResult], None] | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.specs = [s for s in specs if s.enabled]
        self.sources = sources
        self.on_run = on_run
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            timezone="UTC",
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self._stopped = threading.Event()

    def start(self) -> None:
        """Add one job per source and start them, the first runs now."""
        now = utcnow()
        for spec in self.specs:
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=spec.interval, jitter=spec.jitter or None),
                args=[spec.name],
                id=spec.name,
                name=f"ingest {spec.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(spec.interval)),
                next_run_time=now + timedelta(milliseconds=10),
            )
        self._scheduler.start()
        log.info("scheduled %d sources", len(self.specs))

    def _run(self, name: str) -> None:
        if self._stopped.is_set():
            return
        # The ingestor logs the run's one summary line; a second one here would repeat it.
        result = self.ingestor.run(self.sources[name])
        if self.on_run is not None:
            self.on_run(result)

    def _skipped(self, event: JobEvent) -> None:
        reason = "missed" if event.code == EVENT_JOB_MISSED else "still running"
        log.warning("%s: run skipped (%s)", event.job_id, reason)
        self.ingestor.counters.inc(f"ingest.skipped.{reason.replace(' ', '_')}")

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, let the runs in progress finish first."""
        self._stopped.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
