"""sources.yaml: every kind builds its parser; mistakes name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.errors import ConfigError
from infra.yamlnodes import seconds
from ingest.config import KINDS, load_sources, load_specs, make_source


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
        ("{name: a, kind: atom, url: u}", "line 3: sources[1]: field 'kind': 'atom' is not one of"),
        ("{name: a, kind: rss}", "line 3: sources[1]: missing or empty field 'url'"),
        ("{name: a, kind: rss, url: u, interval: soon}", "field 'interval': expected a positive"),
        ("{name: a, kind: rss, url: u, tickers: AAPL}", "field 'tickers' must be a list"),
        ("{name: a, kind: rss, url: u, every: 5m}", "unknown field(s) every"),
        ("{name: x, kind: rss, url: u}", "duplicate source name 'x'"),
    ],
)
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, f"sources:\n  - {{name: x, kind: rss, url: u}}\n  - {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_specs(path)
    assert str(path) in str(err.value) and message.replace("line ", "") in str(err.value)


def test_durations() -> None:
    assert [seconds(v, "w") for v in (90, "90s", "5m", "1.5h", "1d", "250ms")] == [
        90.0, 90.0, 300.0, 5400.0, 86400.0, 0.25,
    ]  # fmt: skip
    for bad in (0, -1, True, "5 minutes", None):
        with pytest.raises(ConfigError):
            seconds(bad, "w")
