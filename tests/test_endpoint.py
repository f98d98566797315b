"""Quants read through the running worker's read-only endpoint while it holds the chDB folder
(the endpoint's parts without a worker: test_endpoint_wire)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner

from infra.broker import free_port
from infra.errors import StoreError
from infra.settings import Settings
from ingest.producer import DocumentProducer
from streams.records import Document
from surveil.cli import cli
from surveil.compose.runtime import WorkerProcess, settings_env
from surveil.demo.run import processed
from surveil.quant import connect
from surveil.quant.server import MAX_BODY, MAX_ROWS
from surveil.quant.token import read_token, token_path
from surveil.quant.wire import QUERY_PATH
from tests.feeds import MSFT_FEED, publish_feed
from tests.records import document

COUNTS = "SELECT (SELECT count() FROM {db}.documents), (SELECT count() FROM {db}.scores)"
QUERY_TIMEOUT_S = 20.0  # the module worker's limit: the heavy read below runs over it
# 30 s of sleep(3) in a row (distinct scalar subqueries run one after the other; equal ones
# would run once), and no CPU taken.
HEAVY = "SELECT sleep(3)" + "".join(f" + (SELECT sleep(3) + {i})" for i in range(1, 10))


@dataclass
class Running:
    """The module's worker, its settings and what it stored."""

    settings: Settings
    documents: list[Document]
    log: Path
    worker: WorkerProcess

    @property
    def pairs(self) -> int:
        return sum(len(d.tickers) for d in self.documents)

    @property
    def tickers(self) -> list[str]:
        return sorted({t for d in self.documents for t in d.tickers})


@pytest.fixture(scope="module")
def running(
    module_settings: Callable[..., Settings],
    shared_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    """One worker for the module, fed the recorded MSFT feed, running until the module ends."""
    home = tmp_path_factory.mktemp("endpoint")
    settings = module_settings(home, kafka_partitions=1, query_timeout_s=QUERY_TIMEOUT_S)
    worker = WorkerProcess(settings, {}, home / "worker.log")
    worker.start()
    try:
        batch = publish_feed(settings, shared_dir / MSFT_FEED)
        scored = sum(len(d.tickers) for d in batch.documents)
        worker.wait_until(processed(len(batch.documents), scored), timeout=180)
        yield Running(settings, list(batch.documents), home / "worker.log", worker)
    finally:
        worker.stop()


STAMPS = (
    "SELECT toDateTime64('2026-03-01 09:30:00.250', 3, 'UTC') AS at,"
    " toDateTime('2026-03-01 09:30:00', 'UTC') AS second, 'x' AS label"
)
STAMPS_FRAME = pd.DataFrame(
    {
        "at": pd.to_datetime(["2026-03-01 09:30:00.250"], utc=True),
        "second": pd.to_datetime(["2026-03-01 09:30:00"], utc=True),
        "label": ["x"],
    }
)


@pytest.mark.integration
def test_quants_read_through_the_worker_while_it_holds_the_folder(running: Running) -> None:
    start = min(d.published_at for d in running.documents) - timedelta(days=1)
    end = max(d.published_at for d in running.documents) + timedelta(days=1)
    with connect(running.settings) as quant:
        assert quant.via == "worker"
        series = quant.sentiment(running.tickers, start, end, freq="1d")
        known = quant.sentiment(running.tickers, start, end, "1d", as_of=datetime.now(UTC))
        docs = quant.documents("MSFT", start, end)
        raw = quant.sql(STAMPS)

    assert raw.equals(STAMPS_FRAME)  # the same types as a direct connection gives
    assert not series.empty and int(series["documents"].sum()) == running.pairs
    assert int(known["documents"].sum()) == running.pairs  # the raw scores, point in time
    assert set(series["ticker"]) <= set(running.tickers)
    assert str(series["bucket"].dt.tz) == "UTC"
    msft = sorted(d.doc_id for d in running.documents if "MSFT" in d.tickers)
    assert sorted(docs["doc_id"]) == msft
    assert docs["published_at"].is_monotonic_increasing


def _url(running: Running) -> str:
    return f"http://127.0.0.1:{running.settings.web_port}{QUERY_PATH}"


def _auth(running: Running) -> dict[str, str]:
    token = read_token(token_path(running.settings.state_dir))
    assert token is not None
    return {"Authorization": f"Bearer {token}"}


def _documents(tag: str, count: int) -> list[Document]:
    """New MSFT documents, none seen before."""
    now = datetime.now(UTC)
    return [
        document(
            f"{tag}-{os.getpid()}-{i:04d}",
            f"Microsoft {tag} story {i}: cloud revenue {10 + i} percent higher",
            ("MSFT",),
            at=now - timedelta(minutes=i),
            fetched_at=now,
        )
        for i in range(count)
    ]


def _publish(running: Running, documents: list[Document]) -> None:
    """Send documents to the worker, and count them as the module's."""
    producer = DocumentProducer(
        running.settings.bootstrap_servers, topic_prefix=running.settings.topic_prefix
    )
    try:
        producer.publish(documents)
    finally:
        producer.close()
    running.documents.extend(documents)


def _wait_until_stored(running: Running) -> None:
    running.worker.wait_until(processed(len(running.documents), running.pairs), timeout=120)


@pytest.mark.integration
def test_writes_through_the_endpoint_are_refused(running: Running) -> None:
    outfile = running.log.parent / "scores.csv"
    writes = [
        "INSERT INTO {db}.scores (doc_id, ticker) VALUES ('x', 'MSFT')",
        "ALTER TABLE {db}.scores DELETE WHERE 1",
        "DROP TABLE {db}.scores",
        "TRUNCATE TABLE {db}.scores",
        "OPTIMIZE TABLE {db}.scores FINAL",
        "KILL QUERY WHERE 1",
        "-- a comment\nKILL QUERY WHERE 1",
        "/* a comment */ KILL QUERY WHERE 1",
        f"BACKUP TABLE {{db}}.scores TO File('{running.log.parent / 'scores.zip'}')",
        "BACKUP TABLE {db}.scores TO Disk('default', 'scores.zip')",
        "SELECT 1; DROP TABLE {db}.scores",
        "SYSTEM STOP MERGES",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_memory_usage = 0",
        f"SELECT * FROM {{db}}.scores INTO OUTFILE '{outfile}'",
    ]
    with connect(running.settings) as quant:
        before = quant.reader.query(COUNTS)
        for sql in writes:
            with pytest.raises(StoreError, match="read-only"):
                quant.reader.query(sql)
        lifted = quant.reader.query("SELECT getSetting('readonly')", None, {"readonly": 0})
        after = quant.reader.query(COUNTS)
        tables = quant.reader.query("SHOW TABLES FROM {db}")[1]  # not streamable in chDB

    assert ("scores",) in tables
    assert lifted == (["getSetting('readonly')"], [(1,)])  # client settings are not sent
    assert before == after == (before[0], [(len(running.documents), running.pairs)])
    assert not outfile.exists()


@pytest.mark.integration
def test_a_refused_write_leaves_the_worker_storing_what_comes_next(running: Running) -> None:
    url, auth = _url(running), _auth(running)
    with httpx.Client(trust_env=False, timeout=60, headers=auth) as client:
        for sql in ("INSERT INTO {db}.documents (doc_id) VALUES (1)", "DROP TABLE {db}.scores"):
            refused = client.post(url, json={"sql": sql})
            assert refused.status_code == 400 and "read-only" in refused.json()["error"]
    later = _documents("after-refusal", 5)
    _publish(running, later)
    _wait_until_stored(running)  # the store agent still writes
    ids = sorted(d.doc_id for d in later)
    with connect(running.settings) as quant:
        stored = quant.reader.query(
            "SELECT doc_id FROM {db}.documents FINAL WHERE doc_id IN {ids:Array(String)} "
            "ORDER BY doc_id",
            {"ids": ids},
        )[1]
        scored = quant.reader.query(
            "SELECT count() FROM {db}.scores FINAL WHERE doc_id IN {ids:Array(String)}",
            {"ids": ids},
        )[1]
    assert stored == [(doc_id,) for doc_id in ids]
    assert scored == [(len(later),)]


@pytest.mark.integration
def test_a_heavy_read_does_not_hold_up_the_writers(running: Running) -> None:
    more = _documents("during-heavy-read", 3)
    with connect(running.settings) as quant, ThreadPoolExecutor(1) as pool:
        heavy = pool.submit(quant.reader.query, HEAVY)
        _publish(running, more)
        _wait_until_stored(running)
        stored_while_reading = not heavy.done()
        with pytest.raises(StoreError, match=f"time limit of {QUERY_TIMEOUT_S:g} s"):
            heavy.result()
    assert stored_while_reading


@pytest.mark.integration
def test_the_endpoint_needs_the_token(running: Running) -> None:
    path = token_path(running.settings.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    url, auth = _url(running), _auth(running)
    query = {"sql": "SELECT 1"}
    tokens = ["", "Bearer", "Bearer not-the-token", auth["Authorization"].removeprefix("Bearer ")]
    with httpx.Client(trust_env=False, timeout=60) as client:
        assert client.get(url).status_code == 401
        assert client.post(url, json=query).status_code == 401
        for wrong in tokens:
            answer = client.post(url, json=query, headers={"Authorization": wrong})
            assert answer.status_code == 401, wrong
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(url, headers=auth).status_code == 200
        assert client.post(url, json=query, headers=auth).json()["rows"] == [[1]]


@pytest.mark.integration
def test_the_endpoint_serves_loopback_hosts_only(running: Running) -> None:
    url, auth, port = _url(running), _auth(running), running.settings.web_port
    query = {"sql": "SELECT 1"}
    foreign = [
        {"Host": f"attacker.example:{port}"},  # a DNS name rebound to 127.0.0.1
        {"Host": f"127.0.0.1.attacker.example:{port}"},
        {"Origin": "http://attacker.example"},  # a web page's fetch
        {"Origin": f"http://attacker.example:{port}"},
        {"Origin": "null"},
    ]
    loopback = [
        {"Host": f"localhost:{port}"},
        {"Host": f"[::1]:{port}"},
        {"Host": "127.0.0.1"},
        {"Origin": f"http://127.0.0.1:{port}"},
        {"Origin": f"http://localhost:{port}"},
    ]
    with httpx.Client(trust_env=False, timeout=60) as client:
        for headers in foreign:
            answer = client.post(url, json=query, headers={**auth, **headers})
            assert answer.status_code == 403, headers
            assert "refused" in answer.json()["error"]
            assert client.get(url, headers={**auth, **headers}).status_code == 403
        for headers in loopback:
            assert client.post(url, json=query, headers={**auth, **headers}).status_code == 200
        # The counters and stages pages, which need no token, serve loopback hosts only too.
        for page in ("/surveil/stats/", "/surveil/agents/"):
            page_url = f"http://127.0.0.1:{port}{page}"
            for headers in foreign:
                assert client.get(page_url, headers=headers).status_code == 403, (page, headers)
            for headers in loopback:
                assert client.get(page_url, headers=headers).status_code == 200, (page, headers)


@pytest.mark.integration
def test_surveil_query_reads_through_the_worker(running: Running) -> None:
    env = settings_env(running.settings)
    result = CliRunner().invoke(
        cli, ["query", "SELECT count() AS n FROM {db}.scores FINAL", "--format", "csv"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"n\n{running.pairs}\n"


@pytest.mark.integration
def test_the_endpoint_caps_bodies_and_rows_and_explains_bad_requests(running: Running) -> None:
    url = _url(running)
    big = {"sql": "SELECT 1", "parameters": {"pad": "x" * MAX_BODY}}
    with httpx.Client(trust_env=False, timeout=60, headers=_auth(running)) as client:
        assert client.post(url, json=big).status_code == 413
        naive = {
            "sql": "SELECT {t:DateTime64(3)}",
            "parameters": {"t": {"$datetime": "2026-03-01"}},
        }
        refused = client.post(url, json=naive)
        assert refused.status_code == 400 and "no UTC offset" in refused.json()["error"]
        bad_sql = client.post(url, json={"sql": "SELECT 1 +"})
        assert bad_sql.status_code == 400 and "query failed" in bad_sql.json()["error"]
        not_sql = client.post(url, json={"sql": "SELEKT 1"})
        assert not_sql.status_code == 400 and "SELEKT is not one of" in not_sql.json()["error"]
        result = client.post(url, json={"sql": "SELECT toDecimal64(1.5, 2) AS d, now64(3) AS t"})
        identity = client.get(url).json()
    assert result.json()["types"] == ["Decimal(18, 2)", "DateTime64(3)"]
    assert result.json()["rows"][0][0] == "1.50"
    assert identity["max_rows"] == MAX_ROWS and identity["max_seconds"] == QUERY_TIMEOUT_S
    with connect(running.settings) as quant:
        with pytest.raises(StoreError, match=f"more than {MAX_ROWS:,} rows"):
            quant.reader.query(f"SELECT number FROM numbers({MAX_ROWS + 1})")
        assert quant.reader.query("SELECT 1") == (["1"], [(1,)])  # still serving


@pytest.mark.integration
def test_connect_says_who_holds_the_folder_when_no_worker_of_it_answers(
    running: Running, tmp_path: Path
) -> None:
    elsewhere = running.settings.model_copy(update={"web_port": free_port()})
    with pytest.raises(StoreError, match="holds the chDB folder") as nobody:
        connect(elsewhere)
    assert f"no worker query endpoint at http://127.0.0.1:{elsewhere.web_port}" in (
        str(nobody.value)
    )
    other_db = running.settings.model_copy(update={"clickhouse_database": "other"})
    with pytest.raises(StoreError, match="serves .* not this database"):
        connect(other_db)
    no_token = running.settings.model_copy(
        update={"state_dir": tmp_path, "clickhouse_dsn": running.settings.dsn}
    )
    with pytest.raises(StoreError, match="there is no query token at"):
        connect(no_token)


@pytest.mark.integration
def test_connect_opens_a_free_folder_directly(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, web_port=free_port())  # type: ignore[call-arg]
    with connect(settings) as quant:
        assert quant.via == "chdb"
        assert quant.reader.query("SELECT 1") == (["1"], [(1,)])
        raw = quant.sql(STAMPS)
    assert raw.equals(STAMPS_FRAME)
