"""Slack delivery: posting by webhook and bot token against local servers, retries, Retry-After."""

from __future__ import annotations

import json
import socket
import sys
import types
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from alerts.slack import SlackBot, SlackWebhook, message
from surveil.demo.receiver import WebhookReceiver
from tests.test_slack import T0, alert, doc


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


Reply = tuple[int, dict[str, str], dict[str, Any]]


class FakeApi(WebhookReceiver):
    """The webhook receiver's server, scripted: each POST gets the next (status, headers, body)
    as JSON, the last one for good; ``requests`` keeps each POST's headers and body."""

    def __init__(self, *replies: Reply) -> None:
        super().__init__()
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        script, requests = list(replies), self.requests

        class Scripted(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                posted = self.rfile.read(int(self.headers["Content-Length"]))
                requests.append((dict(self.headers), json.loads(posted)))
                status, headers, reply = script.pop(0) if len(script) > 1 else script[0]
                data = json.dumps(reply).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for key, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server.RequestHandlerClass = Scripted


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
