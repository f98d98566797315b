"""Slack: escaping, the Block Kit payload, and delivery against a local webhook receiver."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.slack import MAX_BLOCKS, SlackWebhook, escape, message
from streams.records import Alert, DocRef
from surveil.webhook import WebhookReceiver

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
HOSTILE = "<!channel> ping <@U123> *bold* <https://evil|click>"


def doc(i: int, title: str = "", url: str = "", source: str = "wire") -> DocRef:
    return DocRef(
        doc_id=f"doc{i:04d}",
        title=title or f"Headline {i}",
        url=url if url else f"https://example.com/{i}",
        source=source,
        published_at=T0 - timedelta(minutes=i),
        score=-0.5,
    )


def alert(evidence: tuple[DocRef, ...] = (), explanation: str = "ACME is down") -> Alert:
    return Alert(
        alert_id="a" * 32,
        fingerprint="f" * 32,
        rule="mean_score_below",
        severity="warning",
        ticker="ACME",
        fired_at=T0,
        value=-0.5,
        threshold=-0.3,
        window_start=T0 - timedelta(hours=1),
        window_end=T0,
        documents=len(evidence),
        explanation=explanation,
        evidence=evidence,
        state="firing",
    )


def texts(payload: dict[str, Any]) -> Iterator[str]:
    """Every text string in a payload: the fallback and every block's texts."""
    yield payload["text"]
    for block in payload["blocks"]:
        if "text" in block:
            yield block["text"]["text"]
        for item in (*block.get("fields", ()), *block.get("elements", ())):
            yield item["text"]


def test_escape() -> None:
    assert escape("a & b") == "a &amp; b"
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("&lt;") == "&amp;lt;"
    assert escape("plain *bold*") == "plain *bold*"


def test_hostile_text_cannot_mention_or_link() -> None:
    hostile = alert(
        (doc(1, title=HOSTILE, source=HOSTILE, url="https://example.com/?a=1&b=<@U123>"),),
        explanation=HOSTILE,
    )
    payload = message(hostile)
    rendered = list(texts(payload))
    assert not any("<!channel>" in t or "<@U123>" in t or "<https://evil" in t for t in rendered)
    assert any("&lt;!channel&gt; ping &lt;@U123&gt;" in t for t in rendered)
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][0]["text"]["type"] == "plain_text"
    assert payload["text"].startswith("[FIRING] ACME")


def test_payload_stays_within_slacks_block_limit() -> None:
    payload = message(alert(tuple(doc(i) for i in range(100))))
    assert len(payload["blocks"]) <= MAX_BLOCKS == 50
    assert payload["blocks"][0]["type"] == "header"


def test_links_only_for_http_urls() -> None:
    evidence = (
        doc(1, title="web", url="https://example.com/1"),
        doc(2, title="plain", url="http://example.com/2"),
        doc(3, title="script", url="javascript:alert(1)"),
        doc(4, title="file", url="file:///etc/passwd"),
    )
    sections = [b["text"]["text"] for b in message(alert(evidence))["blocks"][2:6]]
    assert sections[0].startswith("<https://example.com/1|web>")
    assert sections[1].startswith("<http://example.com/2|plain>")
    assert sections[2].startswith("script\n") and "javascript" not in sections[2]
    assert sections[3].startswith("file\n") and "file://" not in sections[3]


def test_delivers_on_first_try() -> None:
    with WebhookReceiver() as hook:
        delivery = SlackWebhook(hook.url, timeout=5, backoff=0.01).send(alert((doc(1),)))
    assert (delivery.channel, delivery.ok, delivery.status) == ("slack", True, 200)
    assert hook.attempts == 1
    assert [p["text"] for p in hook.received] == [message(alert((doc(1),)))["text"]]


def test_retries_server_errors_then_delivers_once() -> None:
    with WebhookReceiver(fail_first=2) as hook:
        delivery = SlackWebhook(hook.url, timeout=5, attempts=3, backoff=0.01).send(alert())
    assert (delivery.ok, delivery.status) == (True, 200)
    assert hook.attempts == 3
    assert len(hook.received) == 1


def test_gives_up_after_the_last_attempt() -> None:
    with WebhookReceiver(fail_first=5) as hook:
        delivery = SlackWebhook(hook.url, timeout=5, attempts=3, backoff=0.01).send(alert())
    assert (delivery.ok, delivery.status, delivery.detail) == (False, 500, "error")
    assert hook.attempts == 3
    assert hook.received == []


def test_unreachable_webhook_reports_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = SlackWebhook(f"http://127.0.0.1:{port}/hooks", timeout=5, attempts=2, backoff=0.01)
    delivery = hook.send(alert())
    assert (delivery.ok, delivery.status) == (False, None)
    assert "ConnectError" in delivery.detail
