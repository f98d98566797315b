"""`surveil runs list` over real run databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from infra.settings import Settings
from surveil.cli import cli
from surveil.replay.runs import open_run

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
COLUMNS = [
    "run_id", "range_from", "range_to", "model_version", "speed", "source_topic", "documents",
    "scores", "alerts", "rejected", "started_at", "finished_at", "status",
]  # fmt: skip


def test_runs_list_never_cuts_the_run_id_at_80_columns(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    run_id = "baseline_lexicon_2026_03_02_full_day"
    warehouse = open_run(settings, run_id)
    try:
        row = [run_id, T0, T0, "lexicon-1", "max", "docs.raw", 9, 9, 2, 0, T0, T0, "done"]
        warehouse.insert("runs", [row], COLUMNS)
    finally:
        warehouse.close()
    env = {"SURVEIL_STATE_DIR": str(settings.state_dir), "COLUMNS": "80"}
    listed = CliRunner().invoke(cli, ["runs", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    assert any(f"│ {run_id} │" in line for line in listed.output.splitlines()), listed.output
