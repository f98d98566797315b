"""Ingest runs on the real broker: sent once, remembered across restarts, bad sources survive.

Fixture files are served by a loopback HTTP server with ETags; the documents are counted
in Kafka itself.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from ingest.base import collect
from ingest.config import make_source
from ingest.producer import DocumentProducer
from streams.records import Document, Rejected
from streams.topics import DOCS_DLQ, DOCS_RAW
from surveil.compose.runtime import settings_env
from tests.ingest_helpers import make_ingestor, read_topic, with_topics

FILES = {
    "/sa.xml": ("rss", "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"),
    "/halts.xml": ("rss", "fixtures/feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml"),
    "/stocktwits.json": (
        "stocktwits",
        "fixtures/social/stocktwits_streams_symbol_AAPL_2020-04-24.json",
    ),
    "/tweets.jsonl": ("tweets", "fixtures/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"),
}


@dataclass
class Server:
    """A loopback server of fixture files with ETags; paths in ``hold`` wait for ``release``."""

    url: str
    hits: Counter[str] = field(default_factory=Counter)
    hold: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    broken: set[str] = field(default_factory=set)


@pytest.fixture
def server(shared_dir: Path) -> Iterator[Server]:
    bodies = {path: (shared_dir / rel).read_bytes() for path, (_, rel) in FILES.items()}
    state = Server("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            if self.path in state.hold:
                state.release.wait(30)
            if self.path in state.broken or self.path not in bodies:
                self.send_error(500 if self.path in state.broken else 404)
                return
            body = bodies[self.path]
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def expected_ids(shared_dir: Path, paths: Iterable[str]) -> set[str]:
    """The doc_ids a plain parse of the fixture files gives (the truth to count against)."""
    ids: set[str] = set()
    for path in paths:
        kind, rel = FILES[path]
        source = make_source(kind, path, str(shared_dir / rel))
        ids |= {d.doc_id for d in collect(source).documents}
    return ids


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


class CrashAfterPublish:
    """A producer that dies right after Kafka acknowledged, before any bookkeeping."""

    def __init__(self, inner: DocumentProducer) -> None:
        self.inner = inner

    def publish(self, documents: Iterable[Document], rejected: Iterable[Rejected] = ()) -> Any:
        self.inner.publish(list(documents), list(rejected))
        raise Crash


def source(server: Server, path: str) -> Any:
    return make_source(FILES[path][0], path.strip("/"), f"{server.url}{path}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return with_topics(make_settings())


@pytest.mark.integration
def test_a_second_run_sends_nothing_and_gets_a_304(
    settings: Settings, server: Server, shared_dir: Path
) -> None:
    ingestor, close = make_ingestor(settings)
    try:
        ingestor.recover()
        first = ingestor.run(source(server, "/sa.xml"))
        second = ingestor.run(source(server, "/sa.xml"))
    finally:
        close()
    assert (first.documents, first.error) == (30, None)
    assert second.not_modified and second.documents == 0
    keys = Counter(k for k, _ in read_topic(settings, DOCS_RAW))
    assert set(keys) == expected_ids(shared_dir, ["/sa.xml"])
    assert set(keys.values()) == {1}


@pytest.mark.integration
def test_a_crash_between_kafka_and_the_state_sends_nothing_twice(
    settings: Settings, server: Server, shared_dir: Path
) -> None:
    ingestor, close = make_ingestor(settings, producer=CrashAfterPublish)
    try:
        ingestor.recover()
        with pytest.raises(Crash):
            ingestor.run(source(server, "/stocktwits.json"))
    finally:
        close()
    again, close = make_ingestor(settings)  # the restart: same state folder, new objects
    try:
        assert again.recover() == len(expected_ids(shared_dir, ["/stocktwits.json"]))
        result = again.run(source(server, "/stocktwits.json"))
        tweets = again.run(source(server, "/tweets.jsonl"))
    finally:
        close()
    assert result.documents == 0 and result.duplicates > 0  # fetched again (no 304), not re-sent
    assert tweets.documents > 0
    keys = Counter(k for k, _ in read_topic(settings, DOCS_RAW))
    assert set(keys) == expected_ids(shared_dir, ["/stocktwits.json", "/tweets.jsonl"])
    assert set(keys.values()) == {1}


@pytest.mark.integration
def test_a_failing_source_is_dead_lettered_and_the_others_still_run(
    settings: Settings, server: Server
) -> None:
    server.broken.add("/halts.xml")
    ingestor, close = make_ingestor(settings)
    try:
        ingestor.recover()
        failed = ingestor.run(source(server, "/halts.xml"))
        ok = ingestor.run(source(server, "/sa.xml"))
    finally:
        close()
    assert failed.error and "500" in failed.error
    assert ok.documents == 30
    dlq = [v for _, v in read_topic(settings, DOCS_DLQ)]
    assert [(d["reason"], d["source"]) for d in dlq] == [("fetch_failed", "halts.xml")]
    assert ingestor.counters.get("ingest.fetch_errors") == 1


def _sources_file(tmp_path: Path, server: Server, paths: Iterable[str]) -> Path:
    lines = ["sources:"]
    for path in paths:
        lines += [
            f"  - name: {path.strip('/')}",
            f"    kind: {FILES[path][0]}",
            f"    url: {server.url}{path}",
            "    interval: 1h",
        ]
    file = tmp_path / "sources.yaml"
    file.write_text("\n".join(lines) + "\n")
    return file


@pytest.mark.integration
def test_killed_mid_run_then_restarted_loses_and_repeats_nothing(
    settings: Settings, server: Server, shared_dir: Path, tmp_path: Path
) -> None:
    paths = ["/sa.xml", "/stocktwits.json", "/tweets.jsonl"]
    server.hold.add("/tweets.jsonl")  # this source is mid-fetch when the process dies
    env = {
        **os.environ,
        **settings_env(settings),
        "SURVEIL_SOURCES_FILE": str(_sources_file(tmp_path, server, paths)),
        "SURVEIL_INGEST_USER_AGENT": "surveil-tests",
    }
    log = tmp_path / "ingest-run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "surveil", "ingest", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        first = expected_ids(shared_dir, ["/sa.xml", "/stocktwits.json"])
        deadline = time.monotonic() + 120
        while (
            len({k for k, _ in read_topic(settings, DOCS_RAW)}) < len(first)
            or not server.hits["/tweets.jsonl"]
        ):
            assert run.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    server.release.set()
    server.hold.clear()
    again = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "surveil", "ingest", "once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    keys = Counter(k for k, _ in read_topic(settings, DOCS_RAW))
    assert set(keys) == expected_ids(shared_dir, paths)  # nothing lost
    assert set(keys.values()) == {1}  # nothing sent twice
