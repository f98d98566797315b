"""The README's examples for quants and backtests run as written on what `surveil demo` leaves.

Every `./run query|plot|replay|runs` line of README.md and its Python API example are run
against the demo's data (the bundled sample feed), and each must succeed with rows: an
example that prints "no rows" or an empty frame fails here. A model artifact placeholder
(`artifacts/small-...`) stands for the tiny artifact the suite trains.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from infra.settings import Settings
from surveil.cli import cli
from surveil.compose.runtime import settings_env
from surveil.demo.run import run_demo

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS = re.compile(r"^\./run (query|plot|replay|runs)\b")
EMPTY = ("no rows", "no documents", "no alerts", "0 documents")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text("utf-8"), flags=re.DOTALL)


def _commands() -> list[str]:
    lines = [line.strip() for block in _blocks("bash") for line in block.splitlines()]
    return [line for line in lines if COMMANDS.match(line)]


def _args(line: str, artifact: Path) -> list[str]:
    words = shlex.split(line, comments=True)[1:]  # without ./run
    return [str(artifact) if w.startswith("artifacts/") and w.endswith("...") else w for w in words]


def test_the_readme_has_the_examples_this_test_runs() -> None:
    commands = _commands()
    assert any(c.startswith("./run replay") for c in commands)
    assert any(c.startswith("./run runs diff") for c in commands)
    assert any(c.startswith("./run plot") for c in commands)
    assert any("sv.connect()" in block for block in _blocks("python"))


def test_every_readme_example_returns_rows_on_the_demo_data(
    make_settings: Callable[..., Settings],
    tiny_artifact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings()
    run_demo(settings, timeout=240, echo=lambda *_: None)
    env = settings_env(settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # sv.connect() reads the SURVEIL_* environment
    monkeypatch.chdir(tmp_path)  # where the examples' PNGs go

    for line in _commands():
        result = CliRunner().invoke(cli, _args(line, tiny_artifact), env=env)
        shown = f"{line}\n{result.output}"
        assert result.exit_code == 0, shown
        assert not any(word in result.output for word in EMPTY), shown
    assert Path("cnts.png").stat().st_size > 0 and Path("small_a.png").stat().st_size > 0

    [example] = [block for block in _blocks("python") if "sv.connect()" in block]
    names: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), names)  # noqa: S102 - our own README
    frames = {k: v for k, v in names.items() if isinstance(v, pd.DataFrame)}
    assert set(frames) >= {"series", "known_then", "wide", "docs", "raw"}
    assert all(len(frame) > 0 for frame in frames.values()), {k: len(v) for k, v in frames.items()}
    assert os.environ["SURVEIL_STATE_DIR"] == str(settings.state_dir.resolve())
