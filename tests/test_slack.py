"""Slack: escaping, the Block Kit payload, and delivery against local webhook and API servers."""

from __future__ import annotations

import json
import socket
import sys
import threading
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.slack import MAX_BLOCKS, SlackBot, SlackWebhook, duration, escape, inert, message
from streams.records import Alert, DocRef
from surveil.webhook import WebhookReceiver

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
HOSTILE = (
    "<!channel> <!here> ping <@U123> *bold* _x_ ~x~ `code` <http://evil|click> "
    "<https://evil|click> AT&T"
)
MARKUP = ("*bold*", "_x_", "~x~", "`code`")


def doc(i: int, title: str = "", url: str = "", source: str = "wire") -> DocRef:
    return DocRef(
        doc_id=f"doc{i:04d}",
        title=title or f"Headline {i}",
        url=url if url else f"https://example.com/{i}",
        source=source,
        published_at=T0 - timedelta(minutes=i),
        score=-0.5,
    )


def alert(
    evidence: tuple[DocRef, ...] = (), explanation: str = "ACME is down", **extra: Any
) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "a" * 32,
        "fingerprint": "f" * 32,
        "rule": "mean_score_below",
        "severity": "warning",
        "ticker": "ACME",
        "fired_at": T0,
        "value": -0.5,
        "threshold": -0.3,
        "window_start": T0 - timedelta(hours=1),
        "window_end": T0,
        "documents": len(evidence),
        "explanation": explanation,
        "evidence": evidence,
        "state": "firing",
    }
    return Alert(**(fields | extra))


def texts(payload: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every text in a payload with its type: the fallback (mrkdwn) and every block's texts."""
    yield "mrkdwn", payload["text"]
    for block in payload["blocks"]:
        for item in (block.get("text"), *block.get("fields", ()), *block.get("elements", ())):
            if item is not None:
                yield item["type"], item["text"]


def sections(payload: dict[str, Any]) -> list[str]:
    """The evidence lines: the sections whose text is mrkdwn."""
    return [
        b["text"]["text"]
        for b in payload["blocks"]
        if b["type"] == "section" and b.get("text", {}).get("type") == "mrkdwn"
    ]


def test_escape() -> None:
    assert escape("a & b") == "a &amp; b"
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("&lt;") == "&amp;lt;"
    assert escape("plain *bold*") == "plain *bold*"


def test_inert_swaps_markup_for_lookalikes() -> None:
    assert inert("*bold* _x_ ~x~ `c` & <@U1>") == "∗bold∗ ˍxˍ ∼x∼ ˋcˋ &amp; &lt;@U1&gt;"
    assert inert("> quoted\nnext") == "\u00ad&gt; quoted\nnext"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (133, "2m 13s"), (3_720, "1h 02m"), (273_600, "3d 4h"), (-5, "0s")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_hostile_text_arrives_escaped_never_as_a_mention_or_link() -> None:
    hostile = alert(
        (doc(1, title=HOSTILE, source=HOSTILE, url="https://example.com/?a=1&b=<@U123>|x"),),
        explanation=HOSTILE,
        sources=(HOSTILE,),
    )
    with WebhookReceiver() as hook:
        delivery = SlackWebhook(hook.url, timeout=5).send(hostile)
    assert delivery.ok
    [payload] = hook.received
    rendered = list(texts(payload))
    for kind, text in rendered:
        # The only '<' left opens our own link to the document.
        assert text.count("<") == text.count("<https://example.com/")
        assert "&lt;!channel&gt;" in text or "channel" not in text
        if kind == "mrkdwn":
            assert not any(markup in text for markup in MARKUP)
    [evidence] = sections(payload)
    assert evidence.startswith("<https://example.com/?a=1&amp;b=&lt;@U123&gt;%7Cx|")
    assert evidence.count(">") == 1  # the link closes once, after the escaped title
    assert "AT&amp;T" in evidence and "∗bold∗" in evidence
    assert all(
        b["text"]["verbatim"]
        for b in payload["blocks"][1:]
        if b["type"] == "section" and b.get("text", {}).get("type") == "mrkdwn"
    )
    assert payload["blocks"][0]["type"] == "header"
    assert {kind for kind, _ in rendered} == {"mrkdwn", "plain_text"}
    explanation = payload["blocks"][2]["text"]
    assert explanation["type"] == "plain_text"
    assert explanation["text"].startswith("&lt;!channel&gt; &lt;!here&gt; ping &lt;@U123&gt;")
    assert payload["text"].startswith("[FIRING] ACME mean_score_below (warning)")


def test_evidence_beyond_fifty_blocks_is_cut_with_a_count() -> None:
    payload = message(alert(tuple(doc(i) for i in range(100))), top=100)
    assert len(payload["blocks"]) <= MAX_BLOCKS == 50
    shown = len(sections(payload))
    assert any(t == f"+{100 - shown} more documents" for _, t in texts(payload))
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][-1]["type"] == "context"


def test_top_documents_only_by_default() -> None:
    payload = message(alert(tuple(doc(i) for i in range(12))))
    assert len(sections(payload)) == 10
    assert any(t == "+2 more documents" for _, t in texts(payload))
    assert not any("more documents" in t for _, t in texts(message(alert((doc(1),)))))


def test_zscore_latency_sources_and_model_appear() -> None:
    fired = alert(
        (doc(1),),
        zscore=-2.5,
        model_version="finbert-v3",
        sources=("reuters", "sec"),
        trigger_published_at=T0 - timedelta(minutes=2, seconds=13),
    )
    payload = message(fired, now=T0)
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[:4] == [
        "*Score*\n-0.500",
        "*Z-score*\n-2.50",
        "*Threshold*\n-0.300",
        "*Documents*\n1",
    ]
    context = payload["blocks"][-1]["elements"][0]["text"]
    assert "published to alert: 2m 13s" in context
    assert "sources: reuters, sec" in context and "model finbert-v3" in context
    assert "(z -2.50)" in payload["text"] and "2m 13s" in payload["text"]
    plain = message(alert(), now=T0)
    assert "*Z-score*" not in str(plain) and "published to alert" not in str(plain)


def test_links_only_for_http_urls() -> None:
    evidence = (
        doc(1, title="web", url="https://example.com/1"),
        doc(2, title="plain", url="http://example.com/2"),
        doc(3, title="script", url="javascript:alert(1)"),
        doc(4, title="file", url="file:///etc/passwd"),
    )
    lines = sections(message(alert(evidence)))
    assert lines[0].startswith("<https://example.com/1|web>")
    assert lines[1].startswith("<http://example.com/2|plain>")
    assert lines[2].startswith("script\n") and "javascript" not in lines[2]
    assert lines[3].startswith("file\n") and "file://" not in lines[3]


def test_delivers_on_first_try() -> None:
    with WebhookReceiver() as hook:
        delivery = SlackWebhook(hook.url, timeout=5).send(alert((doc(1),)))
    assert (delivery.channel, delivery.ok, delivery.status) == ("slack", True, 200)
    assert hook.attempts == 1
    assert hook.received[0]["text"].startswith("[FIRING] ACME")


def test_server_error_without_retries_is_one_failed_delivery() -> None:
    with WebhookReceiver(fail_first=5) as hook:
        delivery = SlackWebhook(hook.url, timeout=5).send(alert())
    assert (delivery.ok, delivery.status, delivery.detail) == (False, 500, "error")
    assert hook.attempts == 1


def test_retries_server_errors_when_asked() -> None:
    with WebhookReceiver(fail_first=2) as hook:
        delivery = SlackWebhook(hook.url, timeout=5, retries=2, backoff=0.01).send(alert())
    assert (delivery.ok, delivery.status) == (True, 200)
    assert (hook.attempts, len(hook.received)) == (3, 1)


def test_unreachable_webhook_reports_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery = SlackWebhook(f"http://127.0.0.1:{port}/hooks", timeout=5).send(alert())
    assert (delivery.ok, delivery.status) == (False, None)
    assert "ConnectError" in delivery.detail


class FakeApi:
    """A scripted HTTP server: answers each POST with the next (status, headers, body)."""

    def __init__(self, *replies: tuple[int, dict[str, str], dict[str, Any]]) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self._replies = list(replies)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                api.requests.append((dict(self.headers), json.loads(body)))
                status, headers, reply = (
                    api._replies.pop(0) if len(api._replies) > 1 else api._replies[0]
                )
                data = json.dumps(reply).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api"

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def test_bot_posts_the_same_blocks_with_the_token() -> None:
    with FakeApi((200, {}, {"ok": True, "channel": "C1", "ts": "1700000000.000100"})) as api:
        delivery = SlackBot("xoxb-test", "C1", base_url=api.url, timeout=5).send(alert((doc(1),)))
    assert (delivery.ok, delivery.status, delivery.detail) == (True, 200, "ts=1700000000.000100")
    [(headers, body)] = api.requests
    assert headers["Authorization"] == "Bearer xoxb-test"
    assert body["channel"] == "C1" and body["unfurl_links"] is False
    expected = message(alert((doc(1),)), now=T0)
    assert body["blocks"][:-1] == expected["blocks"][:-1]  # the context carries the send time


def test_bot_reports_slacks_error_when_ok_is_false() -> None:
    with FakeApi((200, {}, {"ok": False, "error": "channel_not_found"})) as api:
        delivery = SlackBot("xoxb-test", "C404", base_url=api.url, timeout=5).send(alert())
    assert (delivery.channel, delivery.ok, delivery.status) == ("slack", False, 200)
    assert delivery.detail == "channel_not_found"
    assert len(api.requests) == 1


def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("alerts.slack.time.sleep", waits.append)
    limited = (429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"})
    with FakeApi(limited, (200, {}, {"ok": True, "ts": "1"})) as api:
        delivery = SlackBot("xoxb-test", "C1", base_url=api.url, retries=1).send(alert())
    assert (delivery.ok, waits, len(api.requests)) == (True, [7.0], 2)


def test_retry_after_beyond_max_wait_ends_the_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("alerts.slack.time.sleep", waits.append)
    with FakeApi((429, {"Retry-After": "120"}, {"ok": False, "error": "ratelimited"})) as api:
        delivery = SlackWebhook(api.url, retries=3, max_wait=30).send(alert())
    assert (delivery.ok, delivery.status, waits, len(api.requests)) == (False, 429, [], 1)
    assert delivery.detail.startswith("retry after 120s")


def test_bot_uses_slack_sdk_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for slack_sdk: WebClient raises SlackApiError for ok false, as the real one."""
    calls: list[dict[str, Any]] = []

    class SlackClientError(Exception):
        pass

    class SlackApiError(SlackClientError):
        def __init__(self, response: Any) -> None:
            super().__init__(response.data["error"])
            self.response = response

    class WebClient:
        def __init__(self, **options: Any) -> None:
            calls.append(options)

        def chat_postMessage(self, **payload: Any) -> Any:  # noqa: N802 - slack_sdk's name
            calls.append(payload)
            reply = types.SimpleNamespace(
                status_code=429, data={"ok": False, "error": "ratelimited"}, headers={}
            )
            reply.headers["Retry-After"] = "3"
            raise SlackApiError(reply)

    errors = types.SimpleNamespace(SlackApiError=SlackApiError, SlackClientError=SlackClientError)
    monkeypatch.setitem(sys.modules, "slack_sdk", types.SimpleNamespace(WebClient=WebClient))
    monkeypatch.setitem(sys.modules, "slack_sdk.errors", errors)
    delivery = SlackBot("xoxb-test", "C1", base_url="http://127.0.0.1:9/api").send(alert())
    assert (delivery.ok, delivery.status) == (False, 429)
    assert delivery.detail == "retry after 3s: ratelimited"
    options, payload = calls
    assert options["base_url"] == "http://127.0.0.1:9/api/" and options["retry_handlers"] == []
    assert payload["channel"] == "C1" and payload["blocks"][0]["type"] == "header"
