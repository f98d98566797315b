"""What `surveil demo` prints of the alerts it received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.slack import fallback
from streams.records import Alert
from surveil.demo.run import webhook_line


def test_the_demo_calls_its_samples_latency_their_age() -> None:
    published = datetime(2026, 3, 2, 13, 5, tzinfo=UTC)
    alert = Alert(
        alert_id="a" * 32, fingerprint="f" * 32, rule="slump", severity="warning",
        ticker="ACME", fired_at=published, value=-0.8, threshold=-0.3,
        window_start=published, window_end=published, documents=5, explanation="",
        state="firing", trigger_published_at=published,
    )  # fmt: skip
    post = {"text": fallback(alert, now=published + timedelta(days=274, hours=6))}
    assert "published to alert 274d 6h" in post["text"]  # what the worker sends
    shown = webhook_line(post, sample=True)
    assert "sample published 274d 6h ago" in shown and "to alert" not in shown
    assert webhook_line(post, sample=False) == post["text"]  # live documents: a real latency
