"""Reading a feed's location (a path, a file URL, HTTP) and collecting its documents."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.errors import SourceError
from ingest.base import collect
from ingest.http import read_location
from ingest.rss import RssSource
from streams.records import stable_id
from tests.rss_helpers import SA, rss


def test_read_location_reads_a_path_and_a_file_url(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss/>")
    assert read_location(str(path)) == b"<rss/>"
    assert read_location(f"file://{path}") == b"<rss/>"


def test_read_location_on_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing.xml"):
        read_location(str(tmp_path / "missing.xml"))


def test_read_location_on_a_file_over_max_bytes_raises(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"x" * 101)
    assert read_location(str(path), max_bytes=101) == b"x" * 101
    with pytest.raises(SourceError, match="larger than 100 bytes"):
        read_location(str(path), max_bytes=100)


Routes = dict[str, tuple[int, bytes]]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Routes], str]]:
    """Serve fixed responses on 127.0.0.1; return the base URL."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(routes: Routes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_read_location_over_http(serve: Callable[[Routes], str], sa_raw: bytes) -> None:
    base = serve({"/feed": (200, sa_raw), "/broken": (500, b"oops")})
    assert read_location(f"{base}/feed") == sa_raw
    with pytest.raises(SourceError, match="500"):
        read_location(f"{base}/broken")
    with pytest.raises(SourceError, match="404"):
        read_location(f"{base}/nowhere")
    with pytest.raises(SourceError, match="larger than 1000 bytes"):
        read_location(f"{base}/feed", max_bytes=1_000)


def test_collect_over_http(serve: Callable[[Routes], str], sa_raw: bytes) -> None:
    base = serve({"/feed": (200, sa_raw)})
    docs = collect(RssSource("sa", f"{base}/feed")).documents
    assert len(docs) == 30
    assert {doc.source for doc in docs} == {"sa"}


def test_collect_orders_documents_oldest_first(shared_dir: Path) -> None:
    batch = collect(RssSource("sa", str(shared_dir / SA)))
    published = [doc.published_at for doc in batch.documents]
    assert (len(published), batch.rejected) == (30, [])
    assert published == sorted(published)
    assert published[0] < published[-1]
    assert batch.documents[-1].doc_id == stable_id("id", "https://seekingalpha.com/Article:4117127")


def test_collect_splits_rejects_from_documents(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(rss("<item><title>Kept</title></item><item><link>x</link></item>"))
    batch = collect(RssSource("local", str(path)))
    assert [doc.title for doc in batch.documents] == ["Kept"]
    assert [r.reason for r in batch.rejected] == ["empty_entry"]
