"""Secrets stay out of logs and stack dumps."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.redact import RedactingStream, Redactor
from infra.settings import Settings
from surveil.compose.runtime import WorkerProcess

SECRET = "T0SECRET/B0SECRET/xyzzyPlughSecret"  # noqa: S105 - a made-up one


def test_configured_secrets_and_secret_shapes_are_masked() -> None:
    redact = Redactor(["s3cr3t-password", "abc"])
    text = (
        "login s3cr3t-password; hook https://hooks.slack.com/services/T1/B2/c3 ok; "
        "token xoxb-123-456-abc; Authorization: Bearer eyJ0.x-y; dsn http://bob:pw@host:8123"
    )
    assert redact(text) == (
        "login ***; hook https://hooks.slack.com/*** ok; token ***; Authorization: Bearer ***; "
        "dsn http://bob:***@host:8123"
    )
    assert redact("abc is too short to be a secret") == "abc is too short to be a secret"


def test_a_redacting_stream_masks_what_goes_through() -> None:
    target = io.StringIO()
    stream = RedactingStream(target, Redactor([SECRET]))
    stream.write(f"posting to http://127.0.0.1:1/services/{SECRET}\n")
    assert target.getvalue() == "posting to http://127.0.0.1:1/services/***\n"


@pytest.mark.integration
def test_a_stack_dump_of_the_worker_shows_no_secret(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    webhook = f"http://127.0.0.1:9/services/{SECRET}"
    worker = WorkerProcess(make_settings(), {"SURVEIL_ALERT_SLACK_WEBHOOK": webhook}, log)
    worker.start()
    try:
        worker.wait_until(lambda stats: True, timeout=120)  # its web server is up
        time.sleep(2)  # the agents are running
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while "TASK " not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        worker.stop()
    dump = log.read_text()
    assert "THREAD MainThread" in dump and "TASK " in dump
    assert "surveil-deliverer" in dump  # every thread, ours included
    assert "xyzzyPlughSecret" not in dump
