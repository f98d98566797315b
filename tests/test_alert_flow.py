"""Alerting end to end: rules -> router -> outbox -> Slack and e-mail, with real local receivers.

A fake clock drives the router; the notifiers post to a local webhook server and an aiosmtpd
server on 127.0.0.1. Each test reads like the desk's experience: what arrives, and when.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.conditions import InhibitRule, Matcher, RouteConfig
from alerts.deliverer import Deliverer
from alerts.email import SmtpNotifier
from alerts.engine import AlertEngine
from alerts.outbox import Outbox
from alerts.ruleset import EventSpec, RuleSet, ThresholdSpec
from alerts.slack import SlackWebhook
from streams.records import Alert, Scored
from surveil.demo.receiver import WebhookReceiver
from tests.test_email import Inbox, smtp_server

# The outbox stamps rows with the real clock, so the story starts now.
T0 = datetime.now(UTC).replace(second=0, microsecond=0)
SLUMP = ThresholdSpec(name="slump", threshold=-0.3, min_docs=3, window_s=3600)
ROUTE = RouteConfig(group_wait_s=30, group_interval_s=60, repeat_interval_s=3600)


def story(n: int, minute: float, score: float, ticker: str = "ACME", **more: object) -> Scored:
    at = T0 + timedelta(minutes=minute)
    fields: dict[str, object] = {
        "doc_id": f"{ticker}-{n}",
        "ticker": ticker,
        "kind": "news",
        "source": "wire",
        "title": f"{ticker} story {n}",
        "url": f"https://example.com/{ticker}/{n}",
        "published_at": at,
        "fetched_at": at,
        "label": "negative" if score < 0 else "positive",
        "p_negative": 0.8 if score < 0 else 0.1,
        "p_neutral": 0.1,
        "p_positive": 0.1 if score < 0 else 0.8,
        "score": score,
        "relevance": 1.0,
        "model_version": "fixed-1",
        "scored_at": at,
        **more,
    }
    return Scored.model_validate(fields)


@dataclass
class Desk:
    """The engine, its outbox and deliverer, and what reached the receivers."""

    engine: AlertEngine
    deliverer: Deliverer
    slack: WebhookReceiver
    mail: Inbox
    states: dict[str, dict[str, object]]

    def feed(self, docs: list[Scored], now: datetime) -> list[Alert]:
        for rec in docs:
            self.states[rec.ticker] = self.engine.observe(self.states.get(rec.ticker, {}), rec, now)
        return self.flush(now)

    def flush(self, now: datetime) -> list[Alert]:
        alerts = self.engine.flush(now)
        for _ in range(3):
            self.deliverer.run_once(now + timedelta(hours=1))  # past any backoff
        return alerts

    def posts(self, state: str) -> list[str]:
        return [p["text"] for p in self.slack.received if p["text"].startswith(f"[{state}]")]


@pytest.fixture
def desk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Desk]:
    rules: RuleSet = getattr(request, "param", RuleSet(rules=(SLUMP,), route=ROUTE))
    fail_first = 3 if request.node.get_closest_marker("slack_outage") else 0
    inbox = Inbox()
    with WebhookReceiver(fail_first=fail_first) as slack, smtp_server(inbox) as port:
        outbox = Outbox(tmp_path / "outbox.db", base=1.0, cap=5.0)
        notifiers = {
            "slack": SlackWebhook(slack.url, retries=0),
            "email": SmtpNotifier("127.0.0.1", port, "surveil@example.com", ["desk@example.com"]),
        }
        engine = AlertEngine(rules, outbox, list(notifiers), tmp_path / "router.json")
        yield Desk(engine, Deliverer(outbox, notifiers), slack, inbox, {})
        outbox.close()


def test_twenty_negative_stories_in_a_minute_give_one_alert(desk: Desk) -> None:
    burst = [story(n, n * 3 / 60, -0.8) for n in range(20)]  # 20 stories in one minute
    assert desk.feed(burst, T0) == []  # group wait: nothing yet
    [alert] = desk.flush(T0 + timedelta(seconds=31))
    assert (alert.ticker, alert.rule, alert.state, alert.documents) == (
        "ACME",
        "slump",
        "firing",
        20,
    )
    assert len(desk.posts("FIRING")) == 1 and len(desk.mail.envelopes) == 1
    assert "-0.80" in alert.explanation and alert.evidence[0].url.startswith("https://")


def test_no_repeat_inside_the_repeat_interval_and_one_after(desk: Desk) -> None:
    desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0)
    desk.flush(T0 + timedelta(seconds=31))
    desk.feed([story(10 + n, 2 + n, -0.9) for n in range(5)], T0 + timedelta(minutes=10))
    assert desk.flush(T0 + timedelta(minutes=59)) == []  # still inside the hour
    [repeat] = desk.flush(T0 + timedelta(minutes=61))
    assert repeat.state == "firing" and len(desk.posts("FIRING")) == 2


def test_a_resolved_message_when_the_condition_clears(desk: Desk) -> None:
    desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0)
    [firing] = desk.flush(T0 + timedelta(seconds=31))
    recovery = [story(100 + n, 5 + n, 0.9) for n in range(10)]
    [resolved] = desk.feed(recovery, T0 + timedelta(minutes=3))
    assert (resolved.state, resolved.alert_id) == ("resolved", firing.alert_id)
    assert len(desk.posts("RESOLVED")) == 1 and len(desk.mail.envelopes) == 2


HALT = EventSpec(name="halt", event="bankruptcy", probability=0.8, severity="critical")
INHIBITED = RuleSet(
    rules=(SLUMP, HALT),
    route=ROUTE,
    inhibit=(InhibitRule(Matcher(kinds=("event",)), Matcher(kinds=("threshold",)), 3600),),
)


@pytest.mark.parametrize("desk", [INHIBITED], indirect=True)
def test_an_event_alert_inhibits_sentiment_alerts_on_its_ticker(desk: Desk) -> None:
    event = story(0, 0, -0.9, event_type="bankruptcy", event_prob=0.95)
    desk.feed([event, *[story(n, n / 60, -0.8) for n in range(1, 6)]], T0)
    desk.feed([story(n, n / 60, -0.8, ticker="OTHR") for n in range(5)], T0)
    sent = desk.flush(T0 + timedelta(seconds=31))
    assert sorted((a.ticker, a.rule) for a in sent) == [("ACME", "halt"), ("OTHR", "slump")]


@pytest.mark.slack_outage
def test_a_slack_outage_then_recovery_delivers_exactly_once(desk: Desk, tmp_path: Path) -> None:
    desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0)
    [alert] = desk.engine.flush(T0 + timedelta(seconds=31))
    now = T0 + timedelta(seconds=31)
    for step in range(8):  # 500, 500, 500, then 200; then nothing more to send
        desk.deliverer.run_once(now + timedelta(minutes=step))
    assert desk.slack.attempts == 4 and len(desk.slack.received) == 1
    attempts = [a.delivery for a in desk.engine.outbox.attempts(alert.alert_id)]
    slack = [d for d in attempts if d.channel == "slack"]
    assert [d.ok for d in slack] == [False, False, False, True]
    assert [d.status for d in slack[:3]] == [500, 500, 500]
    assert len(desk.mail.envelopes) == 1  # e-mail was not held up by Slack


def test_hostile_text_arrives_escaped(desk: Desk) -> None:
    hostile = "<!channel> <@U123> *click* <http://evil.example|here> & co"
    docs = [story(n, n / 60, -0.8, title=hostile) for n in range(5)]
    desk.feed(docs, T0)
    desk.flush(T0 + timedelta(seconds=31))
    [post] = desk.slack.received
    raw = str(post)
    assert "<!channel>" not in raw and "<@U123>" not in raw and "<http://evil" not in raw
    assert "&lt;!channel&gt;" in raw and "&amp; co" in raw
    html = desk.mail.message().get_body(("html",))
    assert html is not None and "<!channel>" not in html.get_content()


def test_a_restart_does_not_notify_again(desk: Desk, tmp_path: Path) -> None:
    desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0)
    desk.flush(T0 + timedelta(seconds=31))
    again = AlertEngine(
        desk.engine.ruleset, desk.engine.outbox, ["slack", "email"], tmp_path / "router.json"
    )
    assert again.flush(T0 + timedelta(minutes=5)) == []
    assert len(desk.posts("FIRING")) == 1


def test_a_restart_during_group_wait_notifies_exactly_once(desk: Desk, tmp_path: Path) -> None:
    assert desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0 + timedelta(seconds=1)) == []
    # killed 10 s in: a new process opens the same outbox; the documents were acknowledged
    with Outbox(tmp_path / "outbox.db", base=1.0, cap=5.0) as reopened:
        again = AlertEngine(desk.engine.ruleset, reopened, ["slack", "email"])
        assert again.flush(T0 + timedelta(seconds=10)) == []  # still in its group wait
        [alert] = again.flush(T0 + timedelta(seconds=31))
        assert again.flush(T0 + timedelta(minutes=5)) == []
        for _ in range(3):
            Deliverer(reopened, desk.deliverer._notifiers).run_once(T0 + timedelta(hours=1))
    assert (alert.state, alert.documents) == ("firing", 5)
    assert len(desk.posts("FIRING")) == 1 and len(desk.mail.envelopes) == 1


def test_a_document_redelivered_against_the_older_rule_state_is_not_notified_twice(
    desk: Desk, tmp_path: Path
) -> None:
    docs = [story(n, n / 60, -0.8) for n in range(5)]
    before = dict(desk.states)  # the rule state the table still had at the crash
    desk.feed(docs, T0)  # the router's state was saved, the table's changelog was not
    with Outbox(tmp_path / "outbox.db", base=1.0, cap=5.0) as reopened:
        again = AlertEngine(desk.engine.ruleset, reopened, ["slack", "email"])
        state = before.get("ACME", {})
        for rec in docs:  # redelivered, from the older state
            state = again.observe(state, rec, T0 + timedelta(seconds=20))
        again.persist()
        [alert] = again.flush(T0 + timedelta(seconds=31))
        assert again.flush(T0 + timedelta(minutes=30)) == []
        # and once more after the notification went out
        state = before.get("ACME", {})
        for rec in docs:
            state = again.observe(state, rec, T0 + timedelta(minutes=31))
        assert again.router.firing() == [("ACME", "slump")]
        assert again.flush(T0 + timedelta(minutes=32)) == []
    assert alert.fired_at == T0  # the first process's episode, not a new one


def test_the_router_state_of_an_older_version_is_imported_once(desk: Desk, tmp_path: Path) -> None:
    desk.feed([story(n, n / 60, -0.8) for n in range(5)], T0)
    legacy = tmp_path / "router.json"
    legacy.write_text(json.dumps(desk.engine.router.snapshot()), "utf-8")
    with Outbox(tmp_path / "fresh.db") as fresh:
        again = AlertEngine(desk.engine.ruleset, fresh, ["slack"], legacy)
        assert not legacy.exists() and legacy.with_suffix(".json.imported").exists()
        assert AlertEngine(desk.engine.ruleset, fresh, ["slack"]).router.snapshot()["groups"]
        [alert] = again.flush(T0 + timedelta(seconds=31))
    assert alert.ticker == "ACME"


ONLY_EMAIL = RuleSet(rules=(replace(SLUMP, channels=("email",)),), route=ROUTE)


@pytest.mark.parametrize(
    ("configured", "rules", "expected"),
    [
        ((), RuleSet(rules=(SLUMP,), route=ROUTE), [("*", "unconfigured")]),
        (("slack",), ONLY_EMAIL, [("email", "unconfigured")]),
        (("email",), RuleSet(rules=(replace(SLUMP, channels=("pagerduty",)),), route=ROUTE),
         [("pagerduty", "unconfigured")]),
    ],
    ids=["no-receiver-at-all", "email-without-smtp", "unknown-channel"],
)  # fmt: skip
def test_an_alert_without_receiver_is_still_recorded(
    tmp_path: Path,
    configured: tuple[str, ...],
    rules: RuleSet,
    expected: list[tuple[str, str]],
) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        engine = AlertEngine(rules, outbox, configured)
        state: dict[str, object] = {}
        for rec in [story(n, n / 60, -0.8) for n in range(5)]:
            state = engine.observe(state, rec, T0)
        [alert] = engine.flush(T0 + timedelta(seconds=31))  # published: an alerts row
        outcomes = [(o.channel, o.status) for o in outbox.deliveries(alert.alert_id)]
        unpublished = [a.alert_id for _, a in engine.unpublished()]
        assert outbox.due(T0 + timedelta(days=1)) == []
    assert outcomes == expected and unpublished == [alert.alert_id]
    assert engine.counters.get("alerts.no_receiver") == 1


NO_WAIT = RuleSet(
    rules=(SLUMP,), route=RouteConfig(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600)
)


@pytest.mark.parametrize("desk", [NO_WAIT], indirect=True)
def test_a_notification_due_at_once_keeps_the_numbers_of_the_document_that_fired(
    desk: Desk,
) -> None:
    # One batch: the third story fires (mean -0.8 over 3), the fourth moves the mean on.
    # The notice must say what fired, as a replay does, not what the batch ended with.
    batch = [story(n, n / 60, -0.8) for n in range(3)] + [story(3, 0.1, -0.2)]
    [alert] = desk.feed(batch, T0)
    assert (alert.state, alert.documents) == ("firing", 3)
    assert alert.value == pytest.approx(-0.8)
