"""The rules file: every mistake named by file, line and field; the example file loads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.conditions import InhibitRule, Matcher, MuteWindow, RouteConfig
from alerts.ruleset import (
    EventSpec,
    NegativeSpikeSpec,
    ShockSpec,
    ThresholdSpec,
    check_file,
    load_ruleset,
)
from infra.errors import ConfigError, RulesError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "alerts.example.yaml"

BROKEN = """\
watchlists:
  tech: [AAPL, MSFT]
rules:
  - name: slump
    kind: treshold
    threshold: -0.3
  - name: low
    kind: threshold
    threshold: low
  - name: energy
    kind: threshold
    threshold: -0.2
    scope: {watchlist: energy}
  - name: low
    kind: threshold
    threshold: -0.4
  - name: typo
    kind: shock
    zscore: -3
    windw: 1h
  - name: slow
    kind: threshold
    threshold: -0.3
    window: 5x
mute:
  - name: night
    start: "16:00"
    end: "09:30"
    timezone: Mars/Olympus
"""


def write(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_a_broken_file_reports_file_line_and_field_of_every_mistake(tmp_path: Path) -> None:
    problems = check_file(write(tmp_path, BROKEN))
    f = tmp_path / "alerts.yaml"
    assert problems == [
        f"{f}:5: rules[0].kind: expected one of threshold, shock, negative_spike, event, "
        "got 'treshold'",
        f"{f}:9: rules[1].threshold: expected a number between -1 and 1, got 'low'",
        f"{f}:13: rules[2].scope.watchlist: unknown watchlist 'energy' (defined: tech)",
        f"{f}:14: rules[3].name: duplicate rule name 'low' (first on line 7)",
        f"{f}:20: rules[4].windw: unknown field for a shock rule; did you mean 'window'?",
        f"{f}:24: rules[5].window: expected a positive duration like 300, '90s', '5m' or "
        "'1h', got '5x'",
        f"{f}:29: mute[0].timezone: unknown IANA time zone 'Mars/Olympus'",
    ]


def test_load_ruleset_raises_one_error_holding_every_problem(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_ruleset(write(tmp_path, BROKEN))
    assert isinstance(caught.value, ConfigError)
    assert len(caught.value.problems) == 7
    assert str(caught.value).count("alerts.yaml:") == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [{name: a, kind: shock}]", "1: rules[0].zscore: missing"),
        ("rules: [{name: a, kind: event}]", "1: rules[0].event: missing"),
        ("rules: [{name: a, kind: event, item: '9.99'}]", "1: rules[0].item: expected an 8-K"),
        ("rules: [{name: a, kind: event, event: bankrupt}]", "did you mean 'bankruptcy'?"),
        ("rules: [{name: a, kind: event, event: ipo, probability: 0}]", "rules[0].probability"),
        ("rules: [{name: a, kind: negative_spike, factor: 1}]", "greater than 1, got 1"),
        ("rules: [{name: a, kind: threshold, threshold: 2}]", "between -1 and 1, got 2"),
        ("rules: [{name: a, kind: threshold, threshold: -1, zscore: -2}]", "for a threshold"),
        ("rules: [{name: a, kind: threshold, threshold: 0, min_docs: 0}]", "whole number >= 1"),
        ("rules: [{name: a, kind: threshold, threshold: 0, severity: high}]", "severity"),
        ("rules: [{name: a, kind: threshold, threshold: 0, scope: some}]", "rules[0].scope"),
        ("rules: []\nroute: {group_wait: 0, repeat_interval: never}", "route.repeat_interval"),
        (
            "rules: [{name: a, kind: threshold, threshold: 0, channels: [slack, pagerduty]}]",
            "1: rules[0].channels[1]: unknown channel 'pagerduty'; expected one of email, slack",
        ),
        ("rules: [{name: a, kind: threshold, threshold: 0, channels: [emial]}]", "'email'?"),
        ("rules: []\nroute: {send_resolved: maybe}", "route.send_resolved: expected true"),
        ("rules: []\nmute: [{name: m, start: '9:75'}]", "mute[0].start: expected a time"),
        ("rules: []\nmute: [{name: m, weekdays: [funday]}]", "mute[0].weekdays[0]"),
        ("rules: []\ninhibit: [{source: {rules: [x]}, target: {}}]", "no rule is named 'x'"),
        ("rules: []\ninhibit: [{source: {kinds: [event]}, target: {}}]", "inhibit[0].target"),
        ("rules: []\nrule: []", "2: rule: unknown field; did you mean 'rules'?"),
        ("watchlists: {}", "1: rules: missing"),
        ("rules: [", "invalid YAML"),
        ("", "the file is empty"),
    ],
)
def test_each_mistake_names_its_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    problems = check_file(write(tmp_path, text))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"{tmp_path / 'alerts.yaml'}:") for p in problems)


def test_the_example_file_loads_and_checks_clean() -> None:
    assert check_file(EXAMPLE) == []
    ruleset = load_ruleset(EXAMPLE)
    kinds = {type(rule) for rule in ruleset.rules}
    assert kinds == {ThresholdSpec, ShockSpec, NegativeSpikeSpec, EventSpec}
    assert ruleset.route == RouteConfig(30.0, 300.0, 4 * 3600.0, True)
    bankruptcy = ruleset.rule("bankruptcy_filing")
    assert isinstance(bankruptcy, EventSpec)
    assert (bankruptcy.event, bankruptcy.item, bankruptcy.min_docs) == ("bankruptcy", "1.03", 1)


def test_sections_become_the_shared_types(tmp_path: Path) -> None:
    ruleset = load_ruleset(
        write(
            tmp_path,
            """\
watchlists: {chips: [nvda, 'ON']}
route: {group_wait: 0, group_interval: 2m, repeat_interval: 1d, send_resolved: false}
inhibit:
  - {source: {rules: [halt]}, target: {kinds: [threshold]}, duration: 30m}
mute:
  - {name: night, weekdays: [Mon, friday], start: 16:00, end: 9:30, timezone: Asia/Tokyo}
rules:
  - {name: halt, kind: event, item: 1.03, probability: 1}
  - {name: chips, kind: threshold, threshold: -.3, scope: {watchlist: chips}, window: 90}
""",
        )
    )
    assert ruleset.watchlists == {"chips": ("NVDA", "ON")}
    assert ruleset.route == RouteConfig(0.0, 120.0, 86400.0, False)
    assert ruleset.inhibit == (InhibitRule(Matcher(("halt",)), Matcher((), ("threshold",)), 1800),)
    assert ruleset.mute == (MuteWindow("night", (0, 4), "16:00", "09:30", "Asia/Tokyo"),)
    chips = ruleset.rule("chips")
    assert isinstance(chips, ThresholdSpec)
    assert (chips.threshold, chips.window_s, chips.tickers) == (
        -0.3,
        90.0,
        frozenset({"NVDA", "ON"}),
    )
    assert chips.covers("ON") and not chips.covers("AAPL")


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["s", "m", "h", "d"]), st.integers(1, 10_000))
def test_durations_read_back_in_seconds(unit: str, amount: int) -> None:
    text = f"rules: [{{name: a, kind: threshold, threshold: 0, window: {amount}{unit}}}]"
    with tempfile.TemporaryDirectory() as folder:
        rule = load_ruleset(write(Path(folder), text)).rules[0]
    size = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert rule.window_s == amount * size


def test_the_known_channels_are_those_the_worker_builds(tmp_path: Path) -> None:
    from pydantic import SecretStr  # noqa: PLC0415

    from alerts.base import CHANNELS  # noqa: PLC0415
    from infra.settings import Settings  # noqa: PLC0415
    from surveil.compose.worker import _notifiers  # noqa: PLC0415

    everything = Settings(  # type: ignore[call-arg]
        _env_file=None,
        alert_slack_webhook=SecretStr("https://hooks.example.com/x"),
        smtp_host="127.0.0.1",
        smtp_from="surveil@example.com",
        smtp_to="desk@example.com",
    )
    assert sorted(_notifiers(everything)) == sorted(CHANNELS)
    text = "rules: [{name: a, kind: threshold, threshold: 0, channels: [slack, email]}]"
    assert load_ruleset(write(tmp_path, text)).rules[0].channels == ("slack", "email")
