"""ClickHouse (chDB) schema and writers: migrations repeat safely, rows land once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from infra.db import Warehouse, connect, load_migrations
from infra.errors import ConfigError, StoreError
from streams.records import Alert, Document, Scored
from streams.store import Store
from tests.records import T0, alert, document, scored


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(connect(f"chdb://{tmp_path / 'ch'}"), "surveil")
    wh.migrate()
    yield wh
    wh.close()


def _doc(n: int) -> Document:
    return document(
        f"doc-{n:05d}", f"story {n}", ("CNTS", "FABR"), at=T0 + timedelta(minutes=n), fetched_at=T0
    )


def _scored(n: int, ticker: str, score: float) -> Scored:
    return scored(
        f"doc-{n:05d}", ticker, T0 + timedelta(seconds=n), score, fetched_at=T0, scored_at=T0
    )


def test_migrations_apply_once(warehouse: Warehouse) -> None:
    assert warehouse.migrate() == []
    versions = warehouse.rows("SELECT version FROM {db}.schema_migrations ORDER BY version")
    assert versions == [(m.version,) for m in load_migrations()]


def test_documents_land_once_however_often_they_are_written(warehouse: Warehouse) -> None:
    store = Store(warehouse)
    assert store.write_documents([_doc(1), _doc(2), _doc(1)]) == 2
    assert store.write_documents([_doc(2), _doc(3)]) == 1
    rows = warehouse.rows("SELECT doc_id, tickers FROM {db}.documents ORDER BY doc_id")
    assert rows == [(f"doc-0000{n}", ["CNTS", "FABR"]) for n in (1, 2, 3)]


def test_redelivered_scores_never_reach_the_rollup_twice(warehouse: Warehouse) -> None:
    store = Store(warehouse)
    batch = [_scored(1, "CNTS", -0.5), _scored(2, "CNTS", -0.3), _scored(1, "FABR", 0.2)]
    for _ in range(3):
        store.write_scores(batch)
    rollup = warehouse.rows(
        "SELECT ticker, sum(documents), round(sum(score_sum), 3), sum(negatives) "
        "FROM {db}.sentiment_1m GROUP BY ticker ORDER BY ticker"
    )
    assert rollup == [("CNTS", 2, -0.8, 2), ("FABR", 1, 0.2, 0)]
    assert warehouse.rows("SELECT count() FROM {db}.scores") == [(3,)]


def _firing() -> Alert:
    return alert(fingerprint="f1", ticker="CNTS", window_start=T0)


def test_scores_keep_a_documents_times_to_the_millisecond(warehouse: Warehouse) -> None:
    # Scores go in as Arrow columns, documents row by row (Native): the same instants, cut
    # to DateTime64(3) the same way, so a join on published_at finds every pair.
    store = Store(warehouse)
    times = [T0 + timedelta(microseconds=us) for us in (0, 999, 1_000, 123_456, 999_999)]
    docs = [document(f"doc-{i:05d}", "x", ("CNTS",), at=at) for i, at in enumerate(times)]
    store.write_documents(docs)
    store.write_scores([scored(d.doc_id, "CNTS", d.published_at, -0.5) for d in docs])
    rows = warehouse.rows(
        "SELECT d.doc_id, d.published_at, s.published_at, s.scored_at FROM {db}.documents AS d "
        "INNER JOIN {db}.scores AS s ON d.doc_id = s.doc_id ORDER BY d.doc_id"
    )
    cut = [at.replace(microsecond=at.microsecond // 1000 * 1000, tzinfo=None) for at in times]
    assert [(r[1], r[2], r[3]) for r in rows] == [(at, at, at) for at in cut]


def test_alert_states_are_kept_as_an_audit_trail(warehouse: Warehouse) -> None:
    firing = _firing()
    resolved = firing.model_copy(update={"state": "resolved", "value": 0.1})
    store = Store(warehouse)
    assert store.write_alerts([firing]) == 1
    assert store.write_alerts([firing, resolved]) == 1
    assert warehouse.rows("SELECT state FROM {db}.alerts ORDER BY updated_at") == [
        ("firing",),
        ("resolved",),
    ]


def test_read_only_queries_refuse_writes(warehouse: Warehouse) -> None:
    with pytest.raises(StoreError, match="readonly"):
        warehouse.query(
            "INSERT INTO {db}.documents (doc_id) VALUES ('x')", settings={"readonly": 2}
        )


def test_unknown_dsn_and_bad_database_names_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chdb:///abs/path"):
        connect("postgres://db")
    client = connect(f"chdb://{tmp_path / 'ch2'}")
    try:
        with pytest.raises(ConfigError, match="identifier"):
            Warehouse(client, "surveil; DROP TABLE x")
    finally:
        client.close()


def test_retention_is_a_ttl_that_can_be_lifted(warehouse: Warehouse) -> None:
    def ttl(table: str) -> bool:
        [(query,)] = warehouse.rows(
            "SELECT create_table_query FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            {"d": warehouse.database, "t": table},
        )
        return " TTL " in str(query)

    warehouse.set_retention(30)
    assert all(ttl(t) for t in ("documents", "scores", "sentiment_1m", "sentiment_1m_by_model"))
    warehouse.set_retention(0)
    assert not any(ttl(t) for t in ("documents", "scores", "sentiment_1m", "sentiment_1m_by_model"))


def test_a_resolved_row_keeps_when_the_condition_cleared(warehouse: Warehouse) -> None:
    firing = _firing()
    cleared = T0 + timedelta(minutes=4, milliseconds=250)
    resolved = firing.model_copy(update={"state": "resolved", "resolved_at": cleared})
    assert Store(warehouse).write_alerts([firing, resolved]) == 2
    rows = warehouse.rows("SELECT state, resolved_at FROM {db}.alerts ORDER BY state")
    assert [(state, at and at.replace(tzinfo=None)) for state, at in rows] == [
        ("firing", None),
        ("resolved", cleared.replace(tzinfo=None)),
    ]
    column = warehouse.rows(
        "SELECT type FROM system.columns WHERE database = {db:String} "
        "AND table = 'alerts' AND name = 'resolved_at'",
        {"db": warehouse.database},
    )
    assert column == [("Nullable(DateTime64(3, 'UTC'))",)]


def _read(warehouse: Warehouse, sql: str) -> tuple[str, str]:
    """The table or projection a query reads and its 'read/total' granules (EXPLAIN)."""
    lines = [str(r[0]).strip() for r in warehouse.rows("EXPLAIN indexes = 1 " + sql)]
    source = next(line for line in lines if "ReadFromMergeTree" in line)
    granules = next(line for line in lines if line.startswith("Granules: ") and "/" in line)
    return source, granules.removeprefix("Granules: ")


def test_time_panels_over_documents_and_alerts_read_only_their_range(
    warehouse: Warehouse,
) -> None:
    # 200,000 documents and 100,000 alert states a minute apart, ids in hash order.
    warehouse.command(
        "INSERT INTO {db}.documents (doc_id, source, kind, title, tickers, published_at,"
        " fetched_at) SELECT hex(MD5(toString(number))), 's', 'news', 't', ['X'],"
        " toDateTime64('2025-01-01', 3, 'UTC') + 60 * number,"
        " toDateTime64('2025-01-01', 3, 'UTC') + 60 * number FROM numbers(200000)"
    )
    warehouse.command(
        "INSERT INTO {db}.alerts (alert_id, fingerprint, rule, severity, ticker, state,"
        " fired_at, value, threshold, window_start, window_end, documents, explanation,"
        " evidence, deliveries) SELECT hex(MD5(toString(number))), 'f', 'r', 'warning', 'X',"
        " 'firing', toDateTime64('2025-01-01', 3, 'UTC') + 60 * number, 0, 0,"
        " toDateTime64('2025-01-01', 3, 'UTC'), toDateTime64('2025-01-01', 3, 'UTC'), 1, '',"
        " '[]', '[]' FROM numbers(100000)"
    )
    for table in ("documents", "alerts"):
        warehouse.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
    day = "BETWEEN toDateTime64('2025-01-05', 3, 'UTC') AND toDateTime64('2025-01-06', 3, 'UTC')"
    panels = {
        "documents": "SELECT toStartOfHour(published_at) AS h, count() FROM {db}.documents "
        f"WHERE published_at {day} GROUP BY h",
        "alerts": f"SELECT ticker, count() FROM {{db}}.alerts WHERE fired_at {day} GROUP BY ticker",
    }
    for name, sql in panels.items():
        source, granules = _read(warehouse, sql)
        done, total = (int(n) for n in granules.split("/"))
        assert "by_" in source and done <= 2 < total, (name, source, granules)
    hours = warehouse.rows(panels["documents"])
    assert len(hours) == 25 and sum(n for _, n in hours) == 1441  # the answer, not only speed
