"""The deliverer: sending what the outbox holds, retries, Retry-After, lateness and fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.deliverer import Deliverer
from alerts.outbox import Outbox
from alerts.slack import SlackWebhook
from infra.errors import ConfigError
from streams.counters import Counters
from streams.records import Alert, Delivery
from surveil.demo.receiver import WebhookReceiver
from tests.test_outbox import KEY, T0, Clock, alert, small_outbox


class Flaky:
    """A notifier that raises ``fail`` times, then delivers; records what it sent and sets
    ``done`` when it has sent something."""

    def __init__(self, name: str, fail: int = 0) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[str] = []
        self.done = threading.Event()

    def send(self, alert: Alert) -> Delivery:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("connection reset")
        self.sent.append(alert.alert_id)
        self.done.set()
        return Delivery(channel=self.name, ok=True, status=200, at=T0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with small_outbox(tmp_path, clock) as box:
        yield box


def test_slack_outage_then_recovery_delivers_exactly_once(outbox: Outbox, clock: Clock):
    with WebhookReceiver(fail_first=3) as receiver:
        # One try per call: the outbox does the retrying, and records every attempt.
        slack = SlackWebhook(receiver.url, retries=0, timeout=5)
        deliverer = Deliverer(outbox, {"slack": slack}, clock=clock)
        outbox.put(alert(), ["slack"], KEY)
        for _ in range(12):
            deliverer.run_once(clock.now)
            clock.advance(10)
        outbox.put(alert(), ["slack"], KEY)  # a replayed put changes nothing
        deliverer.run_once(clock.now)
    assert receiver.attempts == 4 and len(receiver.received) == 1
    attempts = outbox.attempts("a1")
    assert [(a.delivery.ok, a.delivery.status) for a in attempts] == [(False, 500)] * 3 + [
        (True, 200)
    ]
    assert outbox.deliveries("a1")[0].status == "delivered"


def test_a_rate_limited_slack_is_not_retried_before_its_retry_after(tmp_path: Path, clock: Clock):
    box = Outbox(tmp_path / "o.db", base=1, cap=8, clock=clock, rand=lambda: 1.0)
    with box, WebhookReceiver(fail_first=1, fail_status=429, retry_after="120") as receiver:
        deliverer = Deliverer(box, {"slack": SlackWebhook(receiver.url, timeout=5)}, clock)
        box.put(alert(), ["slack"], KEY)
        deliverer.run_once(clock.now)
        [waiting] = box.deliveries("a1")
        assert waiting.next_at == T0 + timedelta(seconds=120)  # not the backoff's 1 s
        assert deliverer.run_once(clock.advance(119)) == 0
        assert deliverer.run_once(clock.advance(1)) == 1
        first, second = box.attempts("a1")
    assert receiver.attempts == 2 and len(receiver.received) == 1
    assert (first.delivery.status, second.delivery.status) == (429, 200)
    assert first.delivery.detail.startswith("retry after 120s")


def test_a_raising_notifier_is_recorded_and_the_loop_goes_on(outbox: Outbox, clock: Clock):
    counters = Counters()
    broken, fine = Flaky("pager", fail=2), Flaky("slack")
    deliverer = Deliverer(outbox, {"pager": broken, "slack": fine}, clock, counters=counters)
    outbox.put(alert(), ["pager", "slack"], KEY)
    assert deliverer.run_once(clock.now) == 2
    for _ in range(5):
        deliverer.run_once(clock.advance(10))
    assert broken.sent == ["a1"] and fine.sent == ["a1"]
    details = [a.delivery.detail for a in outbox.attempts("a1") if not a.delivery.ok]
    assert details == ["RuntimeError: connection reset"] * 2
    assert counters.get("alerts.delivery_failed") == 2 and counters.get("alerts.delivered") == 2


def test_a_channel_without_notifier_is_a_failed_attempt_and_is_retried(
    outbox: Outbox, clock: Clock
):
    outbox.put(alert(), ["email"], KEY)
    Deliverer(outbox, {}, clock).run_once(clock.now)
    [attempt] = outbox.attempts("a1")
    assert (attempt.delivery.ok, attempt.delivery.detail) == (False, "no notifier")
    assert [o.status for o in outbox.deliveries("a1")] == ["pending"]  # it may come back


def test_the_thread_delivers_and_stops(outbox: Outbox, clock: Clock):
    notifier = Flaky("slack")
    deliverer = Deliverer(outbox, {"slack": notifier}, clock, interval=0.01)
    outbox.put(alert(), ["slack"], KEY)
    deliverer.start()
    try:
        assert notifier.done.wait(5)
    finally:
        deliverer.stop()
    assert notifier.sent == ["a1"]


def test_wake_sends_before_the_next_poll(outbox: Outbox, clock: Clock):
    first_pass = threading.Event()
    due = outbox.due

    def watched(now: datetime, limit: int = 100) -> list[Any]:
        first_pass.set()
        return due(now, limit)

    outbox.due = watched  # type: ignore[method-assign]
    notifier = Flaky("slack")
    deliverer = Deliverer(outbox, {"slack": notifier}, clock, interval=3600)
    deliverer.start()
    try:
        assert first_pass.wait(10)  # it found nothing; its next poll is an hour away
        outbox.put(alert(), ["slack"], KEY)
        deliverer.wake()
        assert notifier.done.wait(10)
    finally:
        deliverer.stop()


class Outage:
    """A notifier whose receiver is down (HTTP 500) until ``until``, then delivers."""

    def __init__(self, name: str, clock: Clock, until: datetime) -> None:
        self.name, self.clock, self.until = name, clock, until
        self.tries: list[datetime] = []
        self.sent: list[str] = []

    def send(self, alert: Alert) -> Delivery:
        self.tries.append(self.clock.now)
        if self.clock.now < self.until:
            return Delivery(channel=self.name, ok=False, status=500, detail="down", at=T0)
        self.sent.append(alert.alert_id)
        return Delivery(channel=self.name, ok=True, status=200, at=T0)


def run_for(deliverer: Deliverer, outbox: Outbox, clock: Clock, seconds: float) -> None:
    """Run the deliverer at every moment something is due, for ``seconds`` of fake time."""
    end = clock.now + timedelta(seconds=seconds)
    while clock.now < end:
        deliverer.run_once(clock.now)
        clock.advance(1)


def test_a_receiver_down_for_30_minutes_gets_exactly_one_delivery_after(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
):
    counters = Counters()
    slack = Outage("slack", clock, until=T0 + timedelta(minutes=30))
    email = Flaky("email")
    with Outbox(tmp_path / "o.db", clock=clock) as box:  # the defaults: cap 2 min, 1 day
        deliverer = Deliverer(
            box, {"slack": slack, "email": email}, clock, counters=counters, fallback="email"
        )
        box.put(alert(), ["slack"], KEY)
        run_for(deliverer, box, clock, 45 * 60)
        [to_slack, to_email] = sorted(box.deliveries("a1"), key=lambda o: o.channel != "slack")
    assert slack.sent == ["a1"] and to_slack.status == "delivered"
    gaps = [(b - a).total_seconds() for a, b in zip(slack.tries, slack.tries[1:], strict=False)]
    assert len(slack.tries) > 10 and max(gaps) <= 121  # never given up, never minutes apart
    assert slack.tries[-1] - slack.until <= timedelta(minutes=2)  # soon after recovery
    # late after 10 minutes: reported once, loudly, and copied to the fallback channel
    assert (
        counters.get("alerts.delivery_late") == 1 and counters.get("alerts.delivery_gave_up") == 0
    )
    late = [r for r in caplog.records if "still undelivered" in r.getMessage()]
    assert [r.levelname for r in late] == ["ERROR"] and "fallback channel email" in late[
        0
    ].getMessage()
    assert email.sent == ["a1"] and to_email.status == "delivered"
    assert to_slack.late_at == T0 + timedelta(minutes=10)


def test_past_the_give_up_age_it_stays_visible_as_undeliverable(tmp_path: Path, clock: Clock):
    counters = Counters()
    slack = Outage("slack", clock, until=T0 + timedelta(days=9))
    with Outbox(tmp_path / "o.db", give_up_after=3600, clock=clock) as box:
        deliverer = Deliverer(box, {"slack": slack}, clock, counters=counters)
        box.put(alert(), ["slack"], KEY)
        run_for(deliverer, box, clock, 2 * 3600)
        [outcome] = box.deliveries("a1")
        assert box.due(clock.now) == []
    assert (outcome.status, outcome.done_at) == ("failed", T0 + timedelta(hours=1))
    assert counters.get("alerts.delivery_gave_up") == 1 and slack.sent == []


def test_a_fallback_channel_that_is_not_configured_is_refused(outbox: Outbox):
    with pytest.raises(ConfigError, match="'email' is not configured"):
        Deliverer(outbox, {"slack": Flaky("slack")}, fallback="email")
