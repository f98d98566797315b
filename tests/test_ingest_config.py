"""sources.yaml: every kind builds its parser; every mistake is listed with file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from infra.errors import ConfigError, SourcesError
from infra.yamlnodes import seconds
from ingest.config import KINDS, check_file, load_sources, load_specs, make_source
from surveil.cli import cli
from surveil.cli.ingest import sources_group


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_the_shipped_sources_file_loads() -> None:
    specs = load_specs(Path(__file__).parents[1] / "sources.yaml")
    assert {s.kind for s in specs} >= {"rss", "edgar-atom", "edgar-submissions"}
    assert all(s.interval > 0 and 0 <= s.jitter <= 60 for s in specs)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_builds_a_source(kind: str) -> None:
    source = make_source(kind, "n", "u", forms=("8-K",))
    assert (source.name, source.kind, source.url) == ("n", kind, "u")


def test_fields_are_read_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sources:\n"
        "  - {name: a, kind: rss, url: u}\n"
        "  - {name: b, kind: edgar-atom, url: u, interval: 2m, jitter: 0, forms: [8-K],\n"
        "     headers: {X-Token: t}, enabled: false}\n",
    )
    a, b = load_specs(path)
    assert (a.interval, a.jitter, a.enabled) == (300.0, 30.0, True)
    assert (b.interval, b.jitter, b.forms, dict(b.headers)) == (
        120.0,
        0.0,
        ("8-K",),
        {"X-Token": "t"},
    )
    assert [s.name for s in load_sources(path)] == ["a"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("kind: atom, url: u", "kind: unknown kind 'atom'; did you mean 'edgar-atom'?"),
        ("kind: rss", "url: missing"),
        ("kind: rss, url: u, interval: soon", "interval: expected a positive duration like 300"),
        ("kind: rss, url: u, tickers: AAPL", "tickers: expected a list of strings, got 'AAPL'"),
        ("kind: rss, url: u, tickers: [AAPL, AAPL1]", "tickers[1]: expected a ticker symbol"),
        ("kind: rss, url: u, every: 5m", "every: unknown field for a rss source; expected one of"),
        ("kind: rss, url: u, intervall: 5m", "intervall: unknown field for a rss source; did you"),
        ("kind: rss, url: u, forms: [8-K]", "forms: unknown field for a rss source"),
        ("kind: rss, url: u, enabled: maybe", "enabled: expected true or false, got 'maybe'"),
        ("kind: rss, url: u, name: x", "name: duplicate source name 'x' (first on line 2)"),
    ],
)
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, entry: str, message: str) -> None:
    name = "" if "name:" in entry else "name: a, "
    text = f"sources:\n  - {{name: x, kind: rss, url: u}}\n  - {{{name}{entry}}}\n"
    with pytest.raises(SourcesError) as err:
        load_specs(write(tmp_path, text))
    [problem] = err.value.problems
    assert problem.startswith(f"{tmp_path / 'sources.yaml'}:3: sources[1].{message}")
    assert isinstance(err.value, ConfigError)


BROKEN = """\
sources:
  - name: sa-msft
    kind: atom
    url: https://seekingalpha.com/api/sa/combined/MSFT.xml
    interval: soon
  - name: halts
    kind: rss
    url: https://www.nasdaqtrader.com/rss.aspx?feed=tradehalts
    intervall: 1m
    tickers: AAPL
  - name: sa-msft
    kind: edgar-atom
    url: https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent
    enabled: maybe
"""


def test_every_problem_is_listed_at_its_fields_line(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    assert check_file(path) == [
        f"{path}:3: sources[0].kind: unknown kind 'atom'; did you mean 'edgar-atom'?",
        f"{path}:5: sources[0].interval: expected a positive duration like 300, '90s', '5m' "
        "or '1h', got 'soon'",
        f"{path}:9: sources[1].intervall: unknown field for a rss source; did you mean 'interval'?",
        f"{path}:10: sources[1].tickers: expected a list of strings, got 'AAPL'",
        f"{path}:11: sources[2].name: duplicate source name 'sa-msft' (first on line 2)",
        f"{path}:14: sources[2].enabled: expected true or false, got 'maybe'",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "1: the file is empty; expected a mapping with a 'sources:' list"),
        ("feeds: []\n", "1: feeds: unknown field; expected one of sources"),
        ("sources: {a: 1}\n", "1: sources: expected a list, got a mapping"),
        ("sources:\n  - [a]\n", "2: sources[0]: expected a mapping, got a list"),
        ("sources:\n  - {name: a\n", "3: invalid YAML: expected ',' or '}', but got"),
    ],
)
def test_a_file_that_is_no_sources_list_says_so(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    said = check_file(path)[0]
    assert said.startswith(f"{path}:{problem}")


def test_empty_lists_and_jitter_still_mean_none(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - {name: a, kind: edgar-atom, url: u, tickers:, forms:,"
                           " headers:, jitter:}\n")  # fmt: skip
    [a] = load_specs(path)
    assert (a.tickers, a.forms, dict(a.headers), a.jitter) == ((), (), {}, 0.0)


@pytest.fixture
def surveil() -> Iterator[click.Group]:
    """The `surveil` command with `sources` registered, as cli.py registers the others."""
    before = cli.commands.get("sources")
    cli.add_command(sources_group)
    yield cli
    if before is None:
        cli.commands.pop("sources")
    else:
        cli.add_command(before)


def test_sources_check_prints_every_problem_and_exits_1(
    surveil: click.Group, tmp_path: Path
) -> None:
    path = write(tmp_path, BROKEN)
    result = CliRunner().invoke(surveil, ["sources", "check", str(path)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines == [*check_file(path), f"6 problem(s) in {path}"]
    assert result.stdout == ""


def test_sources_check_defaults_to_the_configured_file(
    surveil: click.Group, tmp_path: Path
) -> None:
    path = write(tmp_path, "sources:\n  - {name: a, kind: rss, url: u}\n"
                           "  - {name: b, kind: tweets, url: u, enabled: false}\n")  # fmt: skip
    result = CliRunner().invoke(
        surveil, ["sources", "check"], env={"SURVEIL_SOURCES_FILE": str(path)}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: 2 sources OK (1 disabled)\n"
    shipped = Path(__file__).parents[1] / "sources.yaml"
    result = CliRunner().invoke(surveil, ["sources", "check", str(shipped)])
    assert result.exit_code == 0 and " sources OK" in result.stdout, result.output


def test_durations() -> None:
    assert [seconds(v, "w") for v in (90, "90s", "5m", "1.5h", "1d", "250ms")] == [
        90.0, 90.0, 300.0, 5400.0, 86400.0, 0.25,
    ]  # fmt: skip
    for bad in (0, -1, True, "5 minutes", None):
        with pytest.raises(ConfigError):
            seconds(bad, "w")
