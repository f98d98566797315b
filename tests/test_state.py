"""The ingest state file: validators, seen ids and the run log survive restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.errors import StateError
from ingest.http import ValidatorStore
from ingest.state import RUNS_KEPT, IngestState, Run

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[IngestState]:
    with IngestState(tmp_path / "ingest.db") as opened:
        yield opened


def test_validators_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ingest.db"
    with IngestState(path) as state:
        store: ValidatorStore = state
        assert store.validators("https://a/feed") == (None, None)
        store.save_validators("https://a/feed", '"v1"', "Wed, 21 Oct 2015 07:28:00 GMT")
        store.save_validators("https://a/feed", '"v2"', None)
    with IngestState(path) as state:
        assert state.validators("https://a/feed") == ('"v2"', None)
        state.save_validators("https://a/feed", None, None)
        assert state.validators("https://a/feed") == (None, None)


def test_unseen_keeps_order_and_drops_repeats(state: IngestState) -> None:
    state.mark_seen("sa", ["b", "d"], T0)
    assert state.unseen("sa", ["a", "b", "c", "a", "d", "e"]) == ["a", "c", "e"]
    assert state.unseen("other", ["b"]) == ["b"]
    assert state.unseen("sa", []) == []


def test_unseen_handles_more_ids_than_one_statement_binds(state: IngestState) -> None:
    ids = [f"id{n}" for n in range(1_200)]
    state.mark_seen("sa", ids[::2], T0)
    assert state.unseen("sa", ids) == ids[1::2]


def test_seen_ids_and_runs_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    with IngestState(path) as state:
        state.mark_seen("sa", ["a", "b"], T0)
        state.record_run("sa", T0, T0 + timedelta(seconds=3), 2, 1, None)
    with IngestState(path) as state:
        assert state.unseen("sa", ["a", "b", "c"]) == ["c"]
        assert state.seen_counts() == {"sa": 2}
        assert state.last_runs() == [Run("sa", T0, T0 + timedelta(seconds=3), 2, 1, None)]


def test_last_runs_gives_the_latest_run_of_each_source(state: IngestState) -> None:
    for n in range(RUNS_KEPT + 5):
        state.record_run("sa", T0, T0 + timedelta(seconds=n), n, 0, None)
    state.record_run("edgar", T0, T0, 0, 0, "HTTP 503, after 5 attempts")
    runs = state.last_runs()
    assert [(run.source, run.documents, run.error) for run in runs] == [
        ("edgar", 0, "HTTP 503, after 5 attempts"),
        ("sa", RUNS_KEPT + 4, None),
    ]
    assert runs[1].finished == T0 + timedelta(seconds=RUNS_KEPT + 4)


def test_prune_forgets_ids_last_seen_before_the_cutoff(state: IngestState) -> None:
    state.mark_seen("sa", ["old", "kept"], T0)
    state.mark_seen("sa", ["kept", "new"], T0 + timedelta(days=10))
    assert state.prune(T0 + timedelta(days=1)) == 1
    assert state.unseen("sa", ["old", "kept", "new"]) == ["old"]
    assert state.seen_counts() == {"sa": 2}


def test_naive_datetimes_are_refused(state: IngestState) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        state.mark_seen("sa", ["a"], datetime(2024, 5, 1))  # noqa: DTZ001


def test_threads_marking_at_once_lose_nothing(state: IngestState) -> None:
    def work(n: int) -> None:
        for batch in range(10):
            ids = [f"{n}-{batch}-{i}" for i in range(20)]
            state.unseen("sa", ids)
            state.mark_seen("sa", ids, T0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.seen_counts() == {"sa": 6 * 10 * 20}


def test_a_file_that_is_not_a_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    path.write_bytes(b"this is not a SQLite database, just text " * 100)
    with pytest.raises(StateError, match="ingest.db"):
        IngestState(path)
    assert path.read_bytes().startswith(b"this is not")


def test_a_damaged_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    with IngestState(path) as state:
        state.mark_seen("sa", [f"id{n}" for n in range(2_000)], T0)
    raw = bytearray(path.read_bytes())
    raw[4096:12288] = b"\xff" * 8192
    path.write_bytes(bytes(raw))
    with pytest.raises(StateError, match="ingest.db"):
        IngestState(path)
