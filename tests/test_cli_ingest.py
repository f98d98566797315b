"""`surveil ingest parse` on the inputs that used to crash it, hang it or leave it mute."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer

import surveil.cli.ingest
from infra.settings import Settings
from surveil.cli import cli
from surveil.compose.runtime import settings_env

STOCKTWITS = "fixtures/social/stocktwits_streams_symbol_AAPL_2020-04-24.json"
ATOM = "fixtures/edgar/getcurrent_all_forms_start0.atom.xml"
CAP = 10 * 1024 * 1024


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `surveil ingest parse --no-link ARGS`; it may exit, never raise."""
    result = CliRunner().invoke(cli, ["ingest", "parse", "--no-link", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def said(result: Result) -> str:
    """Return stderr with rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def test_a_file_over_the_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)  # sparse: 20 MiB on paper, nothing on disk
    reads: list[str] = []
    monkeypatch.setattr(surveil.cli.ingest, "read_file", lambda *a, **k: reads.append(a[0]) or b"")
    result = run("--kind", "rss", str(big))
    assert (result.exit_code, result.stdout, reads) == (1, "", [])
    assert f"{20 * 1024 * 1024} bytes, over the {CAP}-byte cap" in said(result)
    assert "--max-bytes" in said(result)


def test_the_cap_is_an_option_and_a_setting(shared_dir: Path) -> None:
    recording = str(shared_dir / STOCKTWITS)
    result = run("--kind", "stocktwits", recording, env={"SURVEIL_INGEST_MAX_BYTES": "2048"})
    assert result.exit_code == 1 and "over the 2048-byte cap" in said(result)
    result = run("--kind", "stocktwits", "--max-bytes", "4096", recording)
    assert result.exit_code == 1 and "over the 4096-byte cap" in said(result)
    result = run("--kind", "stocktwits", "--max-bytes", "1000000", recording)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 30


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (
            "rss",
            '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>',
        ),
        ("edgar-atom", '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'),
        ("stocktwits", '{"response": {"status": 200}, "messages": []}'),
        ("tweets", "[]"),
        ("edgar-submissions", '{"cik": "1", "filings": {"recent": {"accessionNumber": []}}}'),
        ("reddit-csv", "Comment ID,Username,Comment Body,Upvotes,Date\r\n"),
    ],
)
def test_an_input_without_entries_says_so_and_succeeds(
    tmp_path: Path, kind: str, body: str
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text(body)
    result = run("--kind", kind, str(empty))
    assert (result.exit_code, result.stdout) == (0, "")
    assert f"no entries in {empty}" in said(result)


def test_nothing_but_rejects_still_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"messages": [{"id": ' + "9" * 5_000 + ', "body": "x"}]}')
    result = run("--kind", "stocktwits", str(broken))
    assert (result.exit_code, result.stdout) == (1, "")
    assert "malformed_json: an integer of 5000 digits" in said(result)
    assert "0 documents, 1 rejected" in said(result)


@pytest.mark.parametrize("kind", ["stocktwits", "tweets"])
def test_a_huge_json_integer_is_a_reject_not_a_traceback(tmp_path: Path, kind: str) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text('{"messages": [{"id": 1, "body": "x", "likes": ' + "9" * 5_000 + "}]}")
    result = run("--kind", kind, str(huge))
    assert result.exit_code == 1 and "malformed_json" in said(result)


def test_a_utf32_edgar_feed_parses(shared_dir: Path, tmp_path: Path) -> None:
    text = (shared_dir / ATOM).read_text("latin-1").replace("ISO-8859-1", "UTF-32", 1)
    wide = tmp_path / "atom32.xml"
    wide.write_bytes(text.encode("utf-32"))
    result = run("--kind", "edgar-atom", str(wide))
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 73 and "73 documents, 0 rejected" in said(result)


def test_help_documents_the_cap_and_the_exit_status() -> None:
    result = CliRunner().invoke(cli, ["ingest", "parse", "--help"])
    text = " ".join(result.output.split())
    assert "--max-bytes" in text and "SURVEIL_INGEST_MAX_BYTES" in text
    assert "Exit status: 0" in text and "no entries in FILE" in text


@pytest.mark.integration
def test_ingest_feed_goes_through_the_ingestor_linking_and_remembering(
    make_settings: Callable[..., Settings], shared_dir: Path
) -> None:
    settings = make_settings()
    feed = str(shared_dir / "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml")
    env = settings_env(settings)
    first = CliRunner().invoke(cli, ["ingest", "feed", feed, "--source", "sa"], env=env)
    again = CliRunner().invoke(cli, ["ingest", "feed", feed, "--source", "sa"], env=env)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    sa_new = [
        line.split("│")[2].strip()
        for line in (first.output, again.output)
        for line in line.splitlines()
        if line.startswith("│ sa ")
    ]
    assert sa_new == ["30", "0"]  # the second run's entries were seen: none sent again
    keys, linked = set(), 0
    consumer = KafkaConsumer(
        f"{settings.topic_prefix}docs.raw",
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    for message in consumer:
        value = json.loads(message.value)
        keys.add(message.key)
        linked += isinstance(value["meta"].get("relevance"), dict)  # the linker's scores
    consumer.close()
    assert len(keys) == 30 and linked == 30
