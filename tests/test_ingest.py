"""Ingest runs on the real broker: sent once, remembered across restarts, bad sources survive.

Fixture files are served by a loopback HTTP server with ETags; the documents are counted
in Kafka itself.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.serializer import DefaultSerializer, JsonSerializer

from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.base import collect
from ingest.config import make_source
from ingest.dedup import NearDuplicates
from ingest.http import Fetcher
from ingest.producer import DocumentProducer, TopicReader
from ingest.rss import RssSource
from ingest.runner import Checkpoint, Ingestor
from ingest.state import IngestState
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.records import Document, Rejected
from streams.topics import ALL_TOPICS, DOCS_DLQ, DOCS_RAW, with_prefix
from surveil.runtime import settings_env

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


def read_topic(settings: Settings, topic: str) -> list[tuple[str, Any]]:
    """Every (key, value) on a topic of the test's namespace, from the beginning."""
    name = f"{settings.topic_prefix}{topic}"
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        key_deserializer=DefaultSerializer(),
        value_deserializer=JsonSerializer(),
    )
    parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
    ends = consumer.end_offsets(parts)
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list[tuple[str, Any]] = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        assert time.monotonic() < deadline, "could not read the topic to its end"
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                    out.append((r.key, r.value))
    consumer.close()
    return out


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


def make_ingestor(settings: Settings, producer: Any = None) -> tuple[Ingestor, Callable[[], None]]:
    folder = settings.state_dir / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    state = IngestState(folder / "state.db")
    fetcher = Fetcher(user_agent="surveil-tests", validators=state, retries=1, backoff=0.01)
    real = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    reader = TopicReader(settings.bootstrap_servers, f"{settings.topic_prefix}{DOCS_RAW}")
    ingestor = Ingestor(
        fetcher=fetcher,
        state=state,
        producer=producer(real) if producer else real,
        reader=reader,
        checkpoint=Checkpoint(folder / "checkpoint.json"),
        near_duplicates=NearDuplicates(path=folder / "neardup.json"),
    )

    def close() -> None:
        fetcher.close()
        real.close()
        reader.close()
        state.close()

    return ingestor, close


def source(server: Server, path: str) -> Any:
    return make_source(FILES[path][0], path.strip("/"), f"{server.url}{path}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings()
    ensure_topics(s.bootstrap_servers, with_prefix(s.topic_prefix, ALL_TOPICS), 3)
    return s


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


class Mistyped(RssSource):
    """An RSS source whose documents also declare "AAPL1", which is no ticker at all."""

    def parse(
        self, raw: bytes, fetched_at: datetime | None = None
    ) -> Iterator[Document | Rejected]:
        for item in super().parse(raw, fetched_at):
            if isinstance(item, Document):
                item = item.model_copy(update={"tickers": (*item.tickers, "AAPL1")})
            yield item


@pytest.mark.integration
def test_unknown_tickers_are_dead_lettered_and_the_document_goes_on(
    settings: Settings, shared_dir: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>w</title><item><guid>u1</guid>'
        "<title>$AAPL and $QQQQZ jump</title><pubDate>Mon, 02 Mar 2026 14:00:00 GMT</pubDate>"
        "</item></channel></rss>"
    )
    ingestor, close = make_ingestor(settings)
    ingestor.linker = Linker(Universe.load(shared_dir))
    try:
        ingestor.recover()
        wire = Mistyped("wire", str(feed))
        first = ingestor.run(wire)
        again = ingestor.run(wire)
    finally:
        close()
    assert (first.documents, first.rejected, again.documents, again.rejected) == (1, 1, 0, 0)
    [(_, doc)] = read_topic(settings, DOCS_RAW)
    # $QQQQZ is a well-formed symbol missing from today's lists: kept, unlisted, weighted down.
    assert doc["tickers"] == ["AAPL", "QQQQZ"] and doc["meta"]["unlisted"] == ["QQQQZ"]
    assert doc["meta"]["relevance"] == {"AAPL": 1.0, "QQQQZ": 0.5}
    [(_, dead)] = read_topic(settings, DOCS_DLQ)
    assert dead["reason"] == "unknown_ticker" and "AAPL1" in dead["detail"]
    assert ingestor.counters.get("ingest.rejected.unknown_ticker") == 1
    assert (first.unknown, first.unlisted) == (["AAPL1"], ["QQQQZ"])


SA = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"
WSB = "fixtures/social/reddit_wsb_comments_2024-10-11.csv"


@pytest.mark.integration
def test_a_run_logs_one_summary_line_and_the_details_at_debug(
    settings: Settings, shared_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor, close = make_ingestor(settings)
    ingestor.linker = Linker(Universe.load(shared_dir))
    sa = make_source("rss", "sa-msft", str(shared_dir / SA))
    wsb = make_source("reddit-csv", "wsb", str(shared_dir / WSB))
    try:
        ingestor.recover()
        with caplog.at_level(logging.DEBUG, logger="ingest"):
            runs = [ingestor.run(sa), ingestor.run(wsb), ingestor.run(wsb)]
    finally:
        close()
    ours = [r for r in caplog.records if r.name.startswith("ingest.")]
    said = [(r.levelname, r.getMessage()) for r in ours if r.levelno >= logging.INFO]
    assert said == [
        ("INFO", "sa-msft: 30 new documents, 68 unlisted tickers kept "
                 "(RHT, SONC, SVU, RISE, AZUL, USAT, CFRX, RGLS ... and 60 more)"),
        ("WARNING", "wsb: 1968 new documents, 21 near-duplicates, "
                    "1 unlisted tickers kept (TWTR), dead-lettered 7 empty_text"),
        ("INFO", "wsb: 0 new documents, 1968 already sent, "
                 "7 rejects already dead-lettered, not sent again"),
    ]  # fmt: skip
    debug = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert sum(m.startswith("sa-msft: ") and "kept as unlisted" in m for m in debug) == sum(
        len(d.meta.get("unlisted", ())) for d in _linked(shared_dir, "rss", SA)
    )
    assert sum("rejected (empty_text)" in m for m in debug) == 14  # parsed on both runs
    # The dead-letter records are what they were: one per empty entry, sent once.
    dead = [v for _, v in read_topic(settings, DOCS_DLQ)]
    assert [d["reason"] for d in dead] == ["empty_text"] * 7 == ["empty_text"] * runs[1].rejected
    assert all(d["source"] == "wsb" and d["detail"].startswith("row ") for d in dead)


def _linked(shared_dir: Path, kind: str, rel: str) -> list[Document]:
    linker = Linker(Universe.load(shared_dir))
    return [
        linker.link(d).doc for d in collect(make_source(kind, "x", str(shared_dir / rel))).documents
    ]
