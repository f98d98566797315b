"""Quants read through the running worker's read-only endpoint while it holds the chDB folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import httpx
import pandas as pd
import pytest

from infra.broker import LocalKafka, free_port
from infra.errors import ConfigError, DecodeError, StoreError
from infra.settings import Settings
from ingest.base import collect
from ingest.producer import DocumentProducer
from ingest.rss import RssSource
from streams.records import Document
from surveil.api import connect
from surveil.demo import processed
from surveil.endpoint import MAX_BODY, MAX_ROWS, QUERY_PATH, decode, encode
from surveil.runtime import WorkerProcess

MSFT_FEED = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"
COUNTS = "SELECT (SELECT count() FROM {db}.documents), (SELECT count() FROM {db}.scores)"


@dataclass
class Running:
    """The module's worker, its settings and what it stored."""

    settings: Settings
    documents: list[Document]
    log: Path

    @property
    def pairs(self) -> int:
        return sum(len(d.tickers) for d in self.documents)

    @property
    def tickers(self) -> list[str]:
        return sorted({t for d in self.documents for t in d.tickers})


@pytest.fixture(scope="module")
def running(
    kafka: LocalKafka, shared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """One worker for the module, fed the recorded MSFT feed, running until the module ends."""
    home = tmp_path_factory.mktemp("endpoint")
    namespace = f"ep{os.getpid()}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        state_dir=home / "state",
        shared_dir=shared_dir,
        kafka_broker=f"kafka://{kafka.bootstrap}",
        kafka_partitions=1,
        topic_prefix=f"{namespace}.",
        app_id=f"surveil-{namespace}",
        web_port=free_port(),
        classify_within=0.2,
    )
    worker = WorkerProcess(settings, {}, home / "worker.log")
    worker.start()
    try:
        batch = collect(RssSource("seekingalpha-msft", str(shared_dir / MSFT_FEED)))
        producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
        try:
            producer.publish(batch.documents)
        finally:
            producer.close()
        scored = sum(len(d.tickers) for d in batch.documents)
        worker.wait_until(processed(len(batch.documents), scored), timeout=180)
        yield Running(settings, list(batch.documents), home / "worker.log")
    finally:
        worker.stop()


def test_datetimes_travel_as_iso_with_offset_both_ways() -> None:
    paris = timezone(timedelta(hours=2))
    value = {"at": datetime(2026, 3, 1, 9, 30, 0, 5000, tzinfo=paris), "on": date(2026, 3, 1)}
    sent = encode(value)
    assert sent == {
        "at": {"$datetime": "2026-03-01T09:30:00.005000+02:00"},
        "on": {"$date": "2026-03-01"},
    }
    assert decode(sent) == value
    assert decode(sent)["at"].utcoffset() == timedelta(hours=2)
    # clickhouse-connect returns UTC datetimes naive: the worker sends them as UTC.
    naive = datetime(2026, 3, 1, 9, 30)  # noqa: DTZ001 - what the driver returns
    assert encode([naive], naive_is_utc=True) == [{"$datetime": "2026-03-01T09:30:00+00:00"}]
    assert decode(encode([naive], naive_is_utc=True)) == [naive.replace(tzinfo=UTC)]
    other = [Decimal("1.50"), UUID(int=1), b"ab", (1, "x"), None]
    assert encode(other) == ["1.50", "00000000-0000-0000-0000-000000000001", "ab", [1, "x"], None]


def test_naive_datetimes_are_refused_both_ways() -> None:
    with pytest.raises(ConfigError, match="no time zone"):
        encode({"start": datetime(2026, 3, 1)})  # noqa: DTZ001 - the mistake under test
    with pytest.raises(DecodeError, match="no UTC offset"):
        decode({"$datetime": "2026-03-01T09:30:00"})


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
        "SELECT 1 SETTINGS readonly = 0",
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
def test_the_endpoint_caps_bodies_and_rows_and_explains_bad_requests(running: Running) -> None:
    url = f"http://127.0.0.1:{running.settings.web_port}{QUERY_PATH}"
    big = {"sql": "SELECT 1", "parameters": {"pad": "x" * MAX_BODY}}
    with httpx.Client(trust_env=False, timeout=60) as client:
        assert client.post(url, json=big).status_code == 413
        naive = {
            "sql": "SELECT {t:DateTime64(3)}",
            "parameters": {"t": {"$datetime": "2026-03-01"}},
        }
        refused = client.post(url, json=naive)
        assert refused.status_code == 400 and "no UTC offset" in refused.json()["error"]
        bad_sql = client.post(url, json={"sql": "SELEKT 1"})
        assert bad_sql.status_code == 400 and "query failed" in bad_sql.json()["error"]
        result = client.post(url, json={"sql": "SELECT toDecimal64(1.5, 2) AS d, now64(3) AS t"})
    assert result.json()["types"] == ["Decimal(18, 2)", "DateTime64(3)"]
    assert result.json()["rows"][0][0] == "1.50"
    with connect(running.settings) as quant:
        with pytest.raises(StoreError, match=f"more than {MAX_ROWS:,} rows"):
            quant.reader.query(f"SELECT number FROM numbers({MAX_ROWS + 1})")
        assert quant.reader.query("SELECT 1") == (["1"], [(1,)])  # still serving


@pytest.mark.integration
def test_connect_says_who_holds_the_folder_when_no_worker_of_it_answers(running: Running) -> None:
    elsewhere = running.settings.model_copy(update={"web_port": free_port()})
    with pytest.raises(StoreError, match="holds the chDB folder") as nobody:
        connect(elsewhere)
    assert f"no worker query endpoint was reachable at http://127.0.0.1:{elsewhere.web_port}" in (
        str(nobody.value)
    )
    other_db = running.settings.model_copy(update={"clickhouse_database": "other"})
    with pytest.raises(StoreError, match="serves .* not this database"):
        connect(other_db)


@pytest.mark.integration
def test_connect_opens_a_free_folder_directly(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path, web_port=free_port())  # type: ignore[call-arg]
    with connect(settings) as quant:
        assert quant.via == "chdb"
        assert quant.reader.query("SELECT 1") == (["1"], [(1,)])
        raw = quant.sql(STAMPS)
    assert raw.equals(STAMPS_FRAME)
