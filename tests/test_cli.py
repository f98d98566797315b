"""The command line: the local broker keeps topics and messages across stop and start;
queries print tables, CSV and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer

from infra.broker import free_port
from surveil.cli import cli


def _env(tmp_path: Path) -> dict[str, str]:
    port, controller = free_port(), free_port()
    while controller == port:
        controller = free_port()
    return {
        "SURVEIL_STATE_DIR": str(tmp_path / "state"),
        "SURVEIL_KAFKA_BROKER": f"kafka://127.0.0.1:{port}",
        "SURVEIL_KAFKA_CONTROLLER_PORT": str(controller),
        "SURVEIL_KAFKA_HEAP": "512m",
        "SURVEIL_KAFKA_PARTITIONS": "2",
    }


def _invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.integration
def test_kafka_start_stop_start_keeps_topics_and_messages(tmp_path: Path) -> None:
    env = _env(tmp_path)
    bootstrap = env["SURVEIL_KAFKA_BROKER"].removeprefix("kafka://")
    try:
        code, out = _invoke(env, "kafka", "start")
        assert code == 0 and "started Kafka" in out and "docs.raw" in out
        assert "already running" in _invoke(env, "kafka", "start")[1]
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for n in range(3):
            producer.send("docs.raw", key=b"k", value=f"m{n}".encode())
        producer.flush()
        producer.close()
        assert _invoke(env, "kafka", "stop") == (0, "stopped Kafka\n")
        assert _invoke(env, "kafka", "status")[0] == 1
        code, out = _invoke(env, "kafka", "start")
        assert code == 0 and "created topics" not in out  # they survived the restart
        consumer = KafkaConsumer(
            "docs.raw",
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        assert [m.value for m in consumer] == [b"m0", b"m1", b"m2"]
        consumer.close()
    finally:
        _invoke(env, "kafka", "stop")
    assert _invoke(env, "kafka", "stop")[1] == "Kafka is not running\n"


def test_query_prints_table_csv_and_json_and_refuses_writes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _invoke(env, "migrate")[1].startswith("applied: 001_init")
    assert _invoke(env, "migrate")[1] == "schema is up to date\n"
    sql = "SELECT name, version FROM {db}.schema_migrations WHERE version = 1"
    code, out = _invoke(env, "query", sql, "--format", "json")
    assert code == 0 and json.loads(out) == {"name": "001_init", "version": 1}
    assert _invoke(env, "query", sql, "--format", "csv")[1] == "name,version\n001_init,1\n"
    assert "001_init" in _invoke(env, "query", sql)[1]
    code, out = _invoke(env, "query", "DROP TABLE {db}.scores")
    assert code == 1 and "readonly" in out


def test_ingest_parse_prints_linked_documents_as_json_lines(shared_dir: Path) -> None:
    env = {"SURVEIL_SHARED_DIR": str(shared_dir)}
    index = shared_dir / "fixtures/edgar/nvda_8k_0001045810-26-000024-index.html"
    result = CliRunner().invoke(
        cli, ["ingest", "parse", "--kind", "edgar-index", str(index)], env=env
    )
    assert result.exit_code == 0, result.output
    [doc] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (doc["kind"], doc["meta"]["form_type"], doc["meta"]["items"]) == (
        "filing",
        "8-K",
        ["5.02", "9.01"],
    )
    assert doc["tickers"] == ["NVDA"] and doc["meta"]["relevance"]["NVDA"] == 1.0
    assert "1 documents, 0 rejected" in result.stderr


def test_ingest_parse_fails_only_when_nothing_parsed(shared_dir: Path, tmp_path: Path) -> None:
    env = {"SURVEIL_SHARED_DIR": str(shared_dir)}
    page = shared_dir / "fixtures/tickers/malformed_nasdaqlisted_html_errorpage.txt"
    result = CliRunner().invoke(cli, ["ingest", "parse", "--kind", "rss", str(page)], env=env)
    assert result.exit_code == 1 and result.stdout == ""
    assert "malformed_feed" in result.stderr
    mixed = tmp_path / "tweets.jsonl"
    tweet = (shared_dir / "fixtures/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl").read_text()
    mixed.write_text(tweet.splitlines()[0] + "\n{broken\n")
    result = CliRunner().invoke(cli, ["ingest", "parse", "--kind", "tweets", str(mixed)], env=env)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1
    assert "malformed_json" in result.stderr and "line 2" in result.stderr
