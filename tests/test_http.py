"""The polite fetcher against a scripted loopback server: requests in, Fetched or errors out."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.errors import ConfigError, SourceError
from infra.retry import retry_after_seconds
from ingest.http import Fetcher
from ingest.ratelimit import HostRateLimiter
from ingest.state import IngestState

UA = "surveil-test admin@example.com"


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    send_length: bool = True


Script = Reply | Callable[[dict[str, str]], Reply]


class Server:
    """A loopback server answering each path from a script; the last reply repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Script]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path: str, *script: Script) -> str:
        self.routes[path] = list(script)
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for seen, _ in self.requests if seen == path)

    def _next(self, path: str, headers: dict[str, str]) -> Reply:
        self.requests.append((path, headers))
        script = self.routes.get(path, [Reply(404, b"not found")])
        step = script.pop(0) if len(script) > 1 else script[0]
        return step(headers) if callable(step) else step

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = server._next(self.path, dict(self.headers.items()))
                if reply.delay:
                    server.release.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.send_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join()


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class DictStore:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[str | None, str | None]] = {}

    def validators(self, url: str) -> tuple[str | None, str | None]:
        return self.saved.get(url, (None, None))

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self.saved[url] = (etag, last_modified)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make(fake_time: FakeTime) -> Iterator[Callable[..., Fetcher]]:
    """Build fetchers with a fake clock and no rate limit to speak of; close them after."""
    made: list[Fetcher] = []

    def build(**options: Any) -> Fetcher:
        defaults: dict[str, Any] = {
            "user_agent": UA,
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "default_rate": 1e9,
        }
        fetcher = Fetcher(**{**defaults, **options})
        made.append(fetcher)
        return fetcher

    yield build
    for fetcher in made:
        fetcher.close()


# -- conditional GET ---------------------------------------------------------------------


def test_etag_gives_304_only_after_commit(server: Server, make: Callable[..., Fetcher]) -> None:
    def feed(headers: dict[str, str]) -> Reply:
        if headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"")
        content_type = "application/rss+xml; charset=ISO-8859-1"
        return Reply(200, b"<rss/>", {"ETag": '"v1"', "Content-Type": content_type})

    url = server.route("/feed", feed)
    store = DictStore()
    fetcher = make(validators=store)
    first = fetcher.get(url)
    assert (first.status, first.body, first.etag) == (200, b"<rss/>", '"v1"')
    assert not first.not_modified
    assert (first.content_type, first.encoding) == ("application/rss+xml", "iso-8859-1")
    # Not committed yet: the second request is unconditional.
    assert fetcher.get(url).status == 200
    assert store.saved == {}
    fetcher.commit(first)
    third = fetcher.get(url)
    assert (third.status, third.body, third.not_modified, third.etag) == (304, b"", True, '"v1"')
    assert [headers.get("If-None-Match") for _, headers in server.requests] == [None, None, '"v1"']
    fetcher.commit(third)
    assert store.saved == {url: ('"v1"', None)}


def test_last_modified_gives_304(
    server: Server, make: Callable[..., Fetcher], tmp_path: Path
) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    def feed(headers: dict[str, str]) -> Reply:
        if headers.get("If-Modified-Since") == stamp:
            return Reply(304, b"")
        return Reply(200, b"<rss/>", {"Last-Modified": stamp})

    url = server.route("/feed", feed)
    with IngestState(tmp_path / "state.db") as state:
        fetcher = make(validators=state)
        fetcher.commit(fetcher.get(url))
        again = fetcher.get(url)
    assert (again.not_modified, again.body, again.last_modified) == (True, b"", stamp)


# -- retries -----------------------------------------------------------------------------


def test_429_honours_retry_after(
    server: Server, make: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    url = server.route("/api", Reply(429, b"slow down", {"Retry-After": "2"}), Reply(200, b"{}"))
    fetched = make().get(url)
    assert (fetched.body, fetched.attempts) == (b"{}", 2)
    assert fake_time.sleeps == [2.0]
    assert fetched.waited == pytest.approx(2.0)


def test_503_twice_then_200_backs_off_with_jitter(
    server: Server, make: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    url = server.route("/feed", Reply(503), Reply(503), Reply(200, b"fine"))
    fetched = make(backoff=1.0).get(url)
    assert (fetched.body, fetched.attempts, server.hits("/feed")) == (b"fine", 3, 3)
    assert len(fake_time.sleeps) == 2
    assert 0 <= fake_time.sleeps[0] <= 1.0
    assert 0 <= fake_time.sleeps[1] <= 2.0


def test_500_forever_gives_up_after_retries(server: Server, make: Callable[..., Fetcher]) -> None:
    url = server.route("/feed", Reply(500, b"oops"))
    with pytest.raises(
        SourceError, match="HTTP 500 Internal Server Error, after 3 attempts"
    ) as err:
        make(retries=2).get(url)
    assert server.hits("/feed") == 3
    assert (err.value.reason, err.value.status) == ("http_status", 500)


def test_retry_after_above_the_cap_gives_up_at_once(
    server: Server, make: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    url = server.route("/api", Reply(503, b"", {"Retry-After": "3600"}))
    with pytest.raises(
        SourceError, match="Retry-After of 3600 s, more than retry_after_max"
    ) as err:
        make(retry_after_max=300).get(url)
    assert (server.hits("/api"), fake_time.sleeps) == (1, [])
    assert (err.value.reason, err.value.status, err.value.retry_after) == (
        "retry_after_too_long",
        503,
        3600.0,
    )


def test_404_fails_without_retry(
    server: Server, make: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    with pytest.raises(SourceError, match="HTTP 404 Not Found") as err:
        make().get(server.base + "/missing")
    assert (server.hits("/missing"), fake_time.sleeps) == (1, [])
    assert (err.value.reason, err.value.status) == ("not_found", 404)


def test_slow_response_times_out(server: Server, make: Callable[..., Fetcher]) -> None:
    url = server.route("/slow", Reply(200, b"late", delay=10))
    with pytest.raises(SourceError, match=r"timed out \(ReadTimeout.*after 2 attempts") as err:
        make(timeout=0.2, retries=1).get(url)
    assert err.value.reason == "timeout"


def test_connection_refused_is_retried_then_fails(make: Callable[..., Fetcher]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="ConnectError.*after 2 attempts") as err:
        make(retries=1).get(f"http://127.0.0.1:{port}/feed")
    assert err.value.reason == "refused"


def test_retry_after_seconds() -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:30:00 GMT", now) == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


# -- size, redirects, files --------------------------------------------------------------


def test_oversize_content_length_fails_before_reading(
    server: Server, make: Callable[..., Fetcher]
) -> None:
    url = server.route("/big", Reply(200, b"x" * 2000))
    with pytest.raises(SourceError, match=r"larger than 1000 bytes \(Content-Length 2000\)"):
        make(max_bytes=1000).get(url)


def test_oversize_streamed_body_fails(server: Server, make: Callable[..., Fetcher]) -> None:
    url = server.route("/big", Reply(200, b"x" * 2000, send_length=False))
    with pytest.raises(SourceError, match="larger than 1000 bytes$") as err:
        make(max_bytes=1000).get(url)
    assert err.value.reason == "too_large"
    assert make(max_bytes=2000).get(url).body == b"x" * 2000


def test_redirects_are_followed(server: Server, make: Callable[..., Fetcher]) -> None:
    old = server.route("/old", Reply(301, b"", {"Location": "/new"}))
    new = server.route("/new", Reply(200, b"moved here"))
    fetched = make().get(old)
    assert (fetched.url, fetched.final_url, fetched.body) == (old, new, b"moved here")


def test_files_are_read_from_disk(tmp_path: Path, make: Callable[..., Fetcher]) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss/>")
    store = DictStore()
    fetcher = make(validators=store, max_bytes=6)
    for location in (str(path), f"file://{path}"):
        fetched = fetcher.get(location)
        assert (fetched.status, fetched.body, fetched.etag) == (200, b"<rss/>", None)
        fetcher.commit(fetched)
    assert store.saved == {}
    with pytest.raises(SourceError, match="file larger than 5 bytes"):
        make(max_bytes=5).get(str(path))
    with pytest.raises(SourceError, match="unsupported URL scheme 'ftp'"):
        fetcher.get("ftp://example.com/feed.xml")


# -- rate limit and SEC ------------------------------------------------------------------


def test_rate_limit_spaces_requests_per_host(
    make: Callable[..., Fetcher], fake_time: FakeTime
) -> None:
    hosts: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(200, content=b"ok")

    fetcher = make(rate_limits={"a.example": 2}, transport=httpx.MockTransport(answer))
    waited = [fetcher.get("https://a.example/feed").waited for _ in range(3)]
    assert waited == [0.0, 0.5, 0.5]
    assert fetcher.get("https://b.example/feed").waited == 0.0
    assert fake_time.sleeps == [0.5, 0.5]
    assert hosts == ["a.example"] * 3 + ["b.example"]


def test_rate_limiter_gives_concurrent_callers_distinct_slots() -> None:
    delays: list[float] = []
    limiter = HostRateLimiter({"www.sec.gov": 10}, 2.0, clock=lambda: 0.0, sleep=delays.append)
    threads = [threading.Thread(target=limiter.acquire, args=("www.sec.gov",)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(delays) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_sec_hosts_need_a_contact_in_the_user_agent(make: Callable[..., Fetcher]) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if request.url.host == "example.com":
            return httpx.Response(302, headers={"Location": "https://www.sec.gov/x"})
        return httpx.Response(200, content=b"filing")

    transport = httpx.MockTransport(answer)
    rude = make(user_agent="surveil/0.1", transport=transport)
    with pytest.raises(ConfigError, match="SEC asks for a User-Agent naming a contact"):
        rude.get("https://www.sec.gov/cgi-bin/browse-edgar")
    with pytest.raises(ConfigError, match="accessing-edgar-data"):
        rude.get("https://example.com/moved")
    assert sent == ["https://example.com/moved"]
    polite = make(user_agent="surveil admin@example.com", transport=transport)
    assert polite.get("https://data.sec.gov/x").body == b"filing"
