"""A Slack-compatible webhook receiver on 127.0.0.1, for the demo and the tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Collect JSON posts; optionally answer the first ``fail_first`` posts with an error.

    Use as a context manager; ``url`` is where to post.

    Args:
        fail_first: how many posts to refuse before accepting.
        fail_status: the refusals' HTTP status (Slack answers 429 when rate limited).
        retry_after: a ``Retry-After`` header to send with each refusal.
    """

    def __init__(
        self, fail_first: int = 0, fail_status: int = 500, retry_after: str | None = None
    ) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self._fail_first = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver._fail_first
                    if not failing:
                        receiver.received.append(json.loads(body))
                self.send_response(fail_status if failing else 200)
                if failing and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(b"error" if failing else b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The URL to post to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/alerts"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
