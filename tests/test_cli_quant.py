"""`surveil query` and `surveil plot` on a small chDB warehouse: raw SQL stays read-only,
sentiment series come out bucketed and point-in-time, documents and alerts filter, PNGs draw.

The data (2026-03-02, UTC; each score is known a minute after publication, but one):

    doc  ticker  published  score  relevance  scored
    d1   AAPL    13:01       0.5    1.0        13:02
    d2   AAPL    13:03      -0.25   0.5        13:30   (scored late)
    d3   AAPL    13:07       0.75   1.0        13:08
    d4   AAPL    14:02      -0.5    1.0        14:03
    d1   MSFT    13:01       0.25   1.0        13:02

Alerts: a1 on AAPL fired at 14:03 and resolved with its window ending at 14:40; a2 on MSFT
fired at 13:05. Scores are exact in Float32, so the means below are exact too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from infra.settings import Settings
from streams.records import Alert
from streams.store import SCORE_COLUMNS, Store
from surveil.cli import cli
from surveil.compose.runtime import open_warehouse
from tests import records

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
RANGE = ["--from", "2026-03-02T13:00", "--to", "2026-03-02T15:00"]
PNG = b"\x89PNG\r\n\x1a\n"


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _scored(doc: str, ticker: str, minute: int, score: float, relevance: float, scored: int):
    return records.scored(
        f"doc-{doc}-0000", ticker, _at(minute), score, relevance=relevance, scored_at=_at(scored)
    )


SCORES = [
    _scored("d1", "AAPL", 1, 0.5, 1.0, 2),
    _scored("d2", "AAPL", 3, -0.25, 0.5, 30),
    _scored("d3", "AAPL", 7, 0.75, 1.0, 8),
    _scored("d4", "AAPL", 62, -0.5, 1.0, 63),
    _scored("d1", "MSFT", 1, 0.25, 1.0, 2),
]


def _alert(alert_id: str, ticker: str, state: str, fired: int, window_end: int) -> Alert:
    return records.alert(
        _at(fired),
        alert_id=alert_id,
        fingerprint=f"f-{ticker}",
        ticker=ticker,
        window_end=_at(window_end),
        state=state,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated warehouse holding the rows of the module docstring, closed again."""
    state = tmp_path_factory.mktemp("state")
    warehouse = open_warehouse(Settings(_env_file=None, state_dir=state))  # type: ignore[call-arg]
    try:
        store = Store(warehouse)
        store.write_documents(
            [
                records.document(s.doc_id, f"story {s.doc_id}", ("AAPL",), at=s.published_at)
                for s in SCORES
                if s.ticker == "AAPL"
            ]
        )
        # Store leaves ingested_at to the server clock; pinned here so --as-of is exact.
        rows = [[*(getattr(s, c) for c in SCORE_COLUMNS), s.scored_at] for s in SCORES]
        warehouse.insert("scores", rows, [*SCORE_COLUMNS, "ingested_at"])
        store.write_alerts(
            [
                _alert("a1", "AAPL", "firing", 63, 63),
                _alert("a1", "AAPL", "resolved", 63, 100),
                _alert("a2", "MSFT", "firing", 5, 5),
            ]
        )
    finally:
        warehouse.close()
    return {"SURVEIL_STATE_DIR": str(state)}


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _json(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_raw_sql_still_works_and_stays_read_only(env: dict[str, str]) -> None:
    sql = "SELECT ticker, count() AS n FROM {db}.scores GROUP BY ticker ORDER BY ticker"
    assert _json(_run(env, "query", sql, "--format", "json")) == [
        {"ticker": "AAPL", "n": 4},
        {"ticker": "MSFT", "n": 1},
    ]
    assert _run(env, "query", "--format", "csv", sql).stdout == "ticker,n\nAAPL,4\nMSFT,1\n"
    assert "AAPL" in _run(env, "query", sql).stdout
    refused = _run(env, "query", "DROP TABLE {db}.scores")
    assert refused.exit_code == 1 and "read-only: DROP is not one of" in refused.stderr
    hidden = _run(env, "query", "/* a comment */ KILL QUERY WHERE 1")
    assert hidden.exit_code == 1 and "read-only: KILL is not one of" in hidden.stderr
    lifted = _run(env, "query", "SELECT 1 SETTINGS readonly = 0")
    assert lifted.exit_code == 1 and "read-only" in lifted.stderr
    assert _json(
        _run(env, "query", "SELECT count() AS n FROM {db}.scores", "--format", "json")
    ) == [{"n": 5}]  # nothing was dropped
    assert _run(env, "query", "sentimnt", "AAPL").exit_code == 2  # a typo is not SQL


def test_sentiment_json_has_the_means_per_five_minutes(env: dict[str, str]) -> None:
    rows = _json(
        _run(env, "query", "sentiment", "aapl", *RANGE, "--freq", "5min", "--format", "json")
    )
    assert [(r["bucket"], r["documents"]) for r in rows] == [
        ("2026-03-02T13:00:00+00:00", 2),
        ("2026-03-02T13:05:00+00:00", 1),
        ("2026-03-02T14:00:00+00:00", 1),
    ]
    first = rows[0]
    assert first["mean_score"] == pytest.approx((0.5 - 0.25) / 2)
    assert first["negative_share"] == pytest.approx(0.5)
    assert first["weighted_score"] == pytest.approx((0.5 * 1.0 - 0.25 * 0.5) / 1.5)
    assert [r["mean_score"] for r in rows[1:]] == pytest.approx([0.75, -0.5])


def test_sentiment_buckets_by_freq_across_tickers_as_csv(env: dict[str, str]) -> None:
    result = _run(
        env, "query", "sentiment", "AAPL", "MSFT", *RANGE, "--freq", "1h", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["ticker"], r["bucket"], r["documents"]) for r in rows] == [
        ("AAPL", "2026-03-02 13:00:00+00:00", "3"),
        ("AAPL", "2026-03-02 14:00:00+00:00", "1"),
        ("MSFT", "2026-03-02 13:00:00+00:00", "1"),
    ]
    assert float(rows[0]["mean_score"]) == pytest.approx((0.5 - 0.25 + 0.75) / 3)
    assert float(rows[0]["weighted_score"]) == pytest.approx((0.5 - 0.125 + 0.75) / 2.5)
    assert float(rows[2]["mean_score"]) == pytest.approx(0.25)


def test_sentiment_as_of_drops_what_was_scored_later(env: dict[str, str]) -> None:
    as_of = ["--as-of", "2026-03-02T15:10+02:00"]  # 13:10 UTC: d2 was scored at 13:30
    rows = _json(
        _run(
            env, "query", "sentiment", "AAPL", *RANGE, *as_of, "--freq", "5min", "--format", "json"
        )
    )
    assert [(r["bucket"][11:16], r["documents"], r["mean_score"]) for r in rows] == [
        ("13:00", 1, 0.5),
        ("13:05", 1, 0.75),
    ]


def test_sentiment_writes_parquet_and_a_table(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "aapl.parquet"
    five = ["--freq", "5min"]
    result = _run(
        env, "query", "sentiment", "AAPL", *RANGE, *five, "--format", "parquet", "--out", str(out)
    )
    assert result.exit_code == 0 and "wrote 3 rows" in result.stderr
    frame = pd.read_parquet(out)
    assert list(frame["documents"]) == [2, 1, 1]
    assert frame["bucket"].iloc[0] == pd.Timestamp(T0)
    assert _run(env, "query", "sentiment", "AAPL", "--format", "parquet").exit_code == 2
    table = _run(env, "query", "sentiment", "AAPL", *RANGE, *five).stdout
    assert "2026-03-02 13:05:00" in table and "0.7500" in table and "3 rows" in table


def test_an_empty_range_says_no_rows(env: dict[str, str]) -> None:
    result = _run(env, "query", "sentiment", "AAPL", "--from", "2026-01-01", "--to", "2026-01-02")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no rows" in result.stderr
    bad = _run(env, "query", "sentiment", "AAPL", "--from", "2026-03-03", "--to", "2026-03-02")
    assert bad.exit_code == 1 and "empty range" in bad.stderr


def test_documents_lists_a_tickers_scores_point_in_time(env: dict[str, str]) -> None:
    rows = _json(_run(env, "query", "documents", "AAPL", *RANGE, "--format", "json"))
    assert [(r["doc_id"], r["score"], r["title"]) for r in rows] == [
        ("doc-d1-0000", 0.5, "story doc-d1-0000"),
        ("doc-d2-0000", -0.25, "story doc-d2-0000"),
        ("doc-d3-0000", 0.75, "story doc-d3-0000"),
        ("doc-d4-0000", -0.5, "story doc-d4-0000"),
    ]
    later = _run(env, "query", "documents", "AAPL", *RANGE, "--as-of", "2026-03-02T13:10")
    assert "doc-d2" not in later.stdout and "story doc-d3-0000" in later.stdout


def test_alerts_filter_by_ticker_and_state(env: dict[str, str]) -> None:
    rows = _json(_run(env, "query", "alerts", *RANGE, "--format", "json"))
    assert [(r["alert_id"], r["state"]) for r in rows] == [
        ("a2", "firing"),
        ("a1", "firing"),
        ("a1", "resolved"),
    ]
    only = ["--ticker", "AAPL", "--state", "resolved"]
    aapl = _json(_run(env, "query", "alerts", *only, *RANGE, "--format", "json"))
    assert [(r["ticker"], r["window_end"]) for r in aapl] == [("AAPL", "2026-03-02T14:40:00+00:00")]


@pytest.mark.parametrize("start", ["2026-03-02T12:00", "2026-01-01"], ids=["data", "empty"])
def test_plot_writes_a_png(env: dict[str, str], tmp_path: Path, start: str) -> None:
    out = tmp_path / "plots" / "aapl.png"
    end = (datetime.fromisoformat(start) + timedelta(hours=4)).isoformat()
    result = _run(
        env, "plot", "AAPL", "--from", start, "--to", end, "--freq", "15m", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: ")
    data = out.read_bytes()
    assert data.startswith(PNG) and 10_000 < len(data) < 1_000_000


def test_a_ticker_not_in_the_data_warns_with_a_suggestion(env: dict[str, str]) -> None:
    typo = _run(env, "query", "sentiment", "APPL", "MSFT", *RANGE)
    assert typo.exit_code == 0 and "MSFT" in typo.stdout
    assert typo.stderr == "warning: APPL is not a ticker in the data; did you mean AAPL?\n"
    unknown = _run(env, "query", "documents", "ZZZZ", *RANGE)
    assert "warning: ZZZZ is not a ticker in the data\n" in unknown.stderr
    assert "no rows" in unknown.stderr
    quiet = _run(env, "query", "sentiment", "AAPL", "--from", "2026-01-01", "--to", "2026-01-02")
    assert "warning" not in quiet.stderr  # a known ticker, only quiet in that range


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly' setting in readonly mode."),
        ("SELECT (1", "Syntax error: the query ends too early. Unmatched parentheses"),
        ("SELECT 1 +", "the query ends too early. In scope SELECT 1 +:"),
    ],
)
def test_sql_errors_show_only_what_the_user_wrote(env: dict[str, str], sql: str, says: str) -> None:
    failed = _run(env, "query", sql)
    assert failed.exit_code == 1 and says in failed.stderr
    [line] = failed.stderr.splitlines()
    assert "Native" not in line and "FORMAT" not in line and "in query:" not in line
    kept = _run(env, "query", "SELECT 'FORMAT Native' AS x, nosuch")
    assert "SELECT 'FORMAT Native' AS x, nosuch" in kept.stderr  # the user's own text stays
    own = _run(env, "query", "SELECT 1 FORMAT JSON")
    assert own.exit_code == 2 and "leave out the FORMAT clause" in own.stderr


def test_a_reader_that_leaves_early_ends_the_query_quietly(tmp_path: Path) -> None:
    query = [sys.executable, "-m", "surveil", "query", "SELECT number FROM numbers(300000)"]
    for fmt in ("json", "csv", "table"):
        env = {**os.environ, "SURVEIL_STATE_DIR": str(tmp_path / "state")}
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*query, "--format", fmt],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        errors = proc.stderr.read().decode()
        assert proc.wait(60) in (0, 1) and errors == "", (fmt, errors)


@pytest.fixture(scope="module")
def with_run(env: dict[str, str]) -> dict[str, str]:
    """The same state folder with a replay run "r1" holding two AAPL scores."""
    from surveil.replay.runs import open_run

    settings = Settings(_env_file=None, state_dir=Path(env["SURVEIL_STATE_DIR"]))  # type: ignore[call-arg]
    warehouse = open_run(settings, "r1")
    try:
        Store(warehouse).write_scores([SCORES[0], SCORES[2]])
    finally:
        warehouse.close()
    return env


def test_query_and_plot_read_a_run_with_run(with_run: dict[str, str], tmp_path: Path) -> None:
    sql = "SELECT ticker, count() AS n FROM {db}.scores GROUP BY ticker"
    assert _json(_run(with_run, "query", "--run", "r1", sql, "--format", "json")) == [
        {"ticker": "AAPL", "n": 2}
    ]
    assert _json(_run(with_run, "query", sql, "--run", "r1", "--format", "json")) == [
        {"ticker": "AAPL", "n": 2}
    ]  # the live data has 4 AAPL scores: this is the run's
    rows = _json(
        _run(with_run, "query", "sentiment", "AAPL", *RANGE, "--run", "r1", "--format", "json")
    )
    assert sum(r["documents"] for r in rows) == 2
    out = tmp_path / "run.png"
    drawn = _run(with_run, "plot", "AAPL", *RANGE, "--run", "r1", "--out", str(out))
    assert drawn.exit_code == 0, drawn.output
    assert "2 documents" in drawn.stdout and out.read_bytes().startswith(PNG)
    missing = _run(with_run, "query", "--run", "nope", sql)
    assert missing.exit_code == 1 and "no run nope" in missing.stderr


def test_the_api_opens_a_run(with_run: dict[str, str]) -> None:
    from surveil.quant import connect

    settings = Settings(_env_file=None, state_dir=Path(with_run["SURVEIL_STATE_DIR"]))  # type: ignore[call-arg]
    with connect(settings, run="r1") as quant:
        assert quant.sql("SELECT count() AS n FROM {db}.scores")["n"].tolist() == [2]


def test_plot_speaks_the_zone_asked_for_and_draws_alerts_by_event_time(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "ny.png"
    # a1 fired at 14:03 and its resolved state's window ended at 14:40: both in this range
    # by event time; by fired_at the resolved one (fired 14:03) is in too, so pick a range
    # that only event time covers: 14:30-15:00 holds a1's resolved window end alone.
    window = ["--from", "2026-03-02T14:30", "--to", "2026-03-02T15:00"]
    drawn = _run(env, "plot", "AAPL", *window, "--tz", "America/New_York", "--out", str(out))
    assert drawn.exit_code == 0, drawn.output
    assert "1 alert states" in drawn.stdout
    bad = _run(env, "plot", "AAPL", *RANGE, "--tz", "Mars/Olympus", "--out", str(out))
    assert bad.exit_code == 1 and "Mars/Olympus" in bad.stderr
