"""A worker for the tests that start one, its alerts posted to a local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.settings import Settings
from surveil.compose.runtime import WorkerProcess
from surveil.demo.receiver import WebhookReceiver


@contextmanager
def alerting_worker(
    settings: Settings, log: Path
) -> Iterator[tuple[WorkerProcess, WebhookReceiver]]:
    """Start a worker whose Slack alerts go to a receiver; stop it after, asserting it exits 0.

    The receiver's ``received`` posts stay readable after the block.
    """
    with WebhookReceiver() as receiver:
        worker = WorkerProcess(settings, {"SURVEIL_ALERT_SLACK_WEBHOOK": receiver.url}, log)
        worker.start()
        try:
            yield worker, receiver
        finally:
            assert worker.stop() == 0
