"""The command line: the local broker keeps topics and messages across stop and start;
queries print tables, CSV and JSON."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer

from infra.broker import LocalKafka, free_port
from models.train import TrainConfig
from surveil.cli import COMMANDS, cli


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
    assert code == 1 and "read-only" in out


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


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("kafka://127.0.0.1", "'127.0.0.1' in 'kafka://127.0.0.1' has no valid host:port"),
        ("kafka://127.0.0.1:90x2", "has no valid host:port"),
        ("127.0.0.1:9092", "must start with kafka://"),
    ],
)
def test_a_bad_broker_url_is_one_line_and_exit_1(tmp_path: Path, url: str, says: str) -> None:
    env = {**_env(tmp_path), "SURVEIL_KAFKA_BROKER": url}
    result = CliRunner().invoke(cli, ["kafka", "status"], env=env, catch_exceptions=False)
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: invalid setting SURVEIL_KAFKA_BROKER (kafka_broker): ")
    assert says in line and "pydantic" not in line


def test_version_comes_from_the_package_metadata() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert (result.exit_code, result.output) == (0, f"surveil {version('surveil')}\n")


def test_kafka_status_says_not_answering_when_the_broker_process_serves_nothing(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    home = (tmp_path / "state" / "kafka").resolve()
    home.mkdir(parents=True)
    # Our broker's command line (kafka.Kafka and our server.properties), but no listener:
    # what a hung broker or one that closed its ports after a fatal error looks like.
    argv = ["-c", "import time; time.sleep(60)", "kafka.Kafka", str(home / "server.properties")]
    stand_in = subprocess.Popen([sys.executable, *argv])  # noqa: S603
    (home / "broker.pid").write_text(f"{stand_in.pid}\n")
    try:
        code, out = _invoke(env, "kafka", "status")
    finally:
        stand_in.kill()
        stand_in.wait()
    assert code == 1
    assert out.startswith(f"not answering: pid {stand_in.pid} runs but 127.0.0.1:")
    assert "`surveil kafka stop` then `surveil kafka start`" in out


@pytest.mark.parametrize("command", ["worker", "demo"])
def test_no_broker_is_said_at_once_with_how_to_start_one(tmp_path: Path, command: str) -> None:
    env = _env(tmp_path)
    if command == "demo":  # a remote broker, which the demo does not start itself
        env["SURVEIL_KAFKA_BROKER"] = f"kafka://127.0.0.2:{free_port()}"
    started = time.monotonic()
    result = CliRunner().invoke(cli, [command], env=env, catch_exceptions=False)
    assert time.monotonic() - started < 10  # not kafka-python's 30 s of retries
    assert result.exit_code == 1
    bootstrap = env["SURVEIL_KAFKA_BROKER"].removeprefix("kafka://")
    assert result.stderr == (
        f"error: no Kafka broker answers at {bootstrap}: start one with `surveil kafka start` "
        "(or set SURVEIL_KAFKA_BROKER)\n"
    )


def _worker_env(kafka: LocalKafka, state: Path, web_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SURVEIL_STATE_DIR": str(state),
        "SURVEIL_KAFKA_BROKER": f"kafka://{kafka.bootstrap}",
        "SURVEIL_WEB_PORT": str(web_port),
        "SURVEIL_TOPIC_PREFIX": f"w{os.getpid()}{state.parent.name}.",
        "SURVEIL_APP_ID": f"w{os.getpid()}{state.parent.name}",
    }


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "surveil", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_a_worker_on_a_busy_web_port_says_so_in_one_line(kafka: LocalKafka, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _worker(_worker_env(kafka, tmp_path / "state", port))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is in use (another worker?): give this worker "
        "another with --web-port (SURVEIL_WEB_PORT)"
    )


@pytest.mark.integration
def test_a_second_worker_on_a_state_folder_names_the_first(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        first = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "surveil", "worker"],
            env=_worker_env(kafka, state, free_port()),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "worker built" not in log.read_text():  # it holds chDB from here on
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        done = _worker(_worker_env(kafka, state, free_port()))
    finally:
        first.terminate()
        first.wait(60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: a worker, pid {first.pid}, already runs on {state.resolve()}: stop it first, "
        "or give this one its own --state-dir (SURVEIL_STATE_DIR)"
    )


# --- the command line's structure ------------------------------------------------------


def test_help_lists_every_command_without_importing_any() -> None:
    probe = (
        "import sys; from click.testing import CliRunner; from surveil.cli import cli; "
        "out = CliRunner().invoke(cli, ['--help'], terminal_width=200).output; "
        "print(sorted(m for m in ('pandas', 'torch', 'matplotlib', 'faust', 'surveil.cli.query') "
        "if m in sys.modules)); print(out)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    imported, _, listing = done.stdout.partition("\n")
    assert imported == "[]"
    for name, (_, short_help) in COMMANDS.items():
        assert f"  {name} " in listing and short_help in listing, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_says_the_short_help_the_root_lists(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name
    assert command.get_short_help_str(limit=1000) == COMMANDS[name][1]


def test_train_takes_its_defaults_from_train_config() -> None:
    command = cli.get_command(click.Context(cli), "train")
    assert command is not None
    params = {p.name: p for p in command.params}
    for name in ("epochs", "batch_size", "max_length", "patience", "seed", "head_lr", "lora"):
        assert params[name].default == getattr(TrainConfig, name), name
    assert params["class_weighting"].default is TrainConfig.class_weighting


def test_a_surveil_error_of_a_command_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(
        cli, ["eval", "--model", "lexicon", "--data", __file__, "--task", "event"]
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "error: --model lexicon scores sentiment only: it has no event head\n",
    )
