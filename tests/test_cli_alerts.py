"""`surveil rules check` and `surveil alerts ...` over the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from alerts.audit import prune, sync
from alerts.outbox import Outbox
from infra.settings import Settings
from streams.records import Alert, Delivery, DocRef
from streams.store import Store
from surveil.cli import cli
from surveil.compose.runtime import open_warehouse, outbox_path

ROOT = Path(__file__).parents[1]
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_rules_check_passes_the_example_and_names_file_line_and_field(tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli, ["rules", "check", str(ROOT / "alerts.example.yaml")])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: a\n    kind: threshold\n    threshold: low\n")
    result = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: rules[0].threshold" in result.stderr


def _alert() -> Alert:
    doc = DocRef(
        doc_id="d1", title="ACME <!channel> falls", url="https://example.com/1", source="wire",
        published_at=T0, score=-0.8,
    )  # fmt: skip
    return Alert(
        alert_id="a" * 32, fingerprint="f" * 32, rule="slump", severity="warning",
        ticker="ACME", fired_at=T0, value=-0.8, threshold=-0.3,
        window_start=T0 - timedelta(hours=1), window_end=T0, documents=5,
        explanation="ACME mean -0.80 over 5 documents", evidence=(doc,),
        state="firing",
    )  # fmt: skip


def test_alerts_list_show_ack_and_silence(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    env = {"SURVEIL_STATE_DIR": str(settings.state_dir), "COLUMNS": "200"}
    warehouse = open_warehouse(settings)
    try:
        Store(warehouse).write_alerts([_alert()])
    finally:
        warehouse.close()
    outbox_path(settings).parent.mkdir(parents=True)
    with Outbox(outbox_path(settings)) as outbox:
        outbox.put(_alert(), ["slack"], f"{'a' * 32}:firing:0")

    span = ["--from", "2026-03-01", "--to", "2026-03-03"]
    listed = CliRunner().invoke(cli, ["alerts", "list", *span], env=env)
    assert listed.exit_code == 0 and "ACME" in listed.output and "slack: pending" in listed.output
    ack = CliRunner().invoke(
        cli, ["alerts", "ack", "a" * 32, "--by", "ana", "--note", "seen"], env=env
    )
    assert ack.exit_code == 0
    shown = CliRunner().invoke(cli, ["alerts", "show", "aaaa"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "ACME mean -0.80" in shown.output and "https://example.com/1" in shown.output
    assert "acknowledged by ana" in shown.output
    silence = ["alerts", "silence", "--ticker", "ACME", "--for", "2h", "--reason", "known news"]
    result = CliRunner().invoke(cli, silence, env=env)
    assert result.exit_code == 0 and "until" in result.output
    active = CliRunner().invoke(cli, ["alerts", "silences"], env=env)
    assert "ACME" in active.output and "known news" in active.output
    with Outbox(outbox_path(settings)) as outbox:
        assert outbox.is_silenced("ACME", "slump", datetime.now(UTC))
        assert not outbox.is_silenced("OTHR", "slump", datetime.now(UTC))
    wide = CliRunner().invoke(cli, ["alerts", "silence", "--reason", "x"], env=env)
    assert wide.exit_code == 2


def test_the_outbox_journal_is_copied_to_clickhouse_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    warehouse = open_warehouse(settings)
    try:
        with Outbox(tmp_path / "outbox.db") as outbox:
            outbox.put(_alert(), ["slack"], f"{'a' * 32}:firing:0")
            [pending] = outbox.due(datetime.now(UTC) + timedelta(seconds=1))
            failed = Delivery(channel="slack", ok=False, status=500, detail="boom")
            outbox.record(pending, failed, datetime.now(UTC))
            outbox.ack("a" * 32, "ana", "seen")
            silence = outbox.silence(
                "ACME", None, datetime.now(UTC) + timedelta(hours=1), "ana", "x"
            )
            assert sync(outbox, warehouse) == 3
            assert sync(outbox, warehouse) == 0  # nothing new: nothing copied twice
            outbox.unsilence(silence)
            assert sync(outbox, warehouse) == 1  # the silence's new version
        deliveries = warehouse.rows(
            "SELECT alert_id, channel, ok, status FROM {db}.alert_deliveries"
        )
        acks = warehouse.rows("SELECT by, note FROM {db}.alert_acks")
        ended = warehouse.rows("SELECT removed IS NOT NULL FROM {db}.alert_silences FINAL")
    finally:
        warehouse.close()
    assert deliveries == [("a" * 32, "slack", False, 500)]
    assert acks == [("ana", "seen")] and ended == [(1,)]


def test_the_outbox_forgets_only_what_clickhouse_already_holds(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    warehouse = open_warehouse(settings)
    later = datetime.now(UTC) + timedelta(days=1)
    try:
        with Outbox(tmp_path / "outbox.db") as outbox:
            for n in range(3):
                outbox.put(_alert(), ["slack"], f"{'a' * 32}:firing:{n}")
            due = sorted(outbox.due(later), key=lambda p: p.key)
            for pending in due[:2]:
                outbox.record(pending, Delivery(channel="slack", ok=True), datetime.now(UTC))
            assert sync(outbox, warehouse) == 2
            outbox.record(due[2], Delivery(channel="slack", ok=True), datetime.now(UTC))
            # three notifications done, two attempts copied: the third attempt must stay
            assert prune(outbox, warehouse, later) == 3 + 2
            kept = [a.key[-1] for a in outbox.attempts("a" * 32)]
            assert sync(outbox, warehouse) == 1
        copied = warehouse.rows("SELECT key FROM {db}.alert_deliveries ORDER BY id")
    finally:
        warehouse.close()
    assert kept == ["2"]
    assert [k[-1] for (k,) in copied] == ["0", "1", "2"]


def test_ack_show_and_silence_take_a_unique_id_prefix_or_fail(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    env = {"SURVEIL_STATE_DIR": str(settings.state_dir), "COLUMNS": "200"}
    first = _alert().model_copy(update={"alert_id": "3f2a9c" + "1" * 26})
    second = _alert().model_copy(update={"alert_id": "3f2b00" + "2" * 26, "ticker": "OTHR"})
    warehouse = open_warehouse(settings)
    try:
        Store(warehouse).write_alerts([first])  # the second is in the outbox only
    finally:
        warehouse.close()
    with Outbox(outbox_path(settings)) as outbox:
        outbox.put(second, [], f"{second.alert_id}:firing:0", unconfigured=["email"])

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["alerts", *args], env=env)

    acked = run("ack", "3f2a9c", "--by", "ana")
    assert acked.exit_code == 0 and first.alert_id in acked.output
    for prefix, says in [("3f2", "ambiguous"), ("zzzz", "no alert 'zzzz'"), ("", "give an")]:
        for command in (["ack", prefix], ["show", prefix]):
            failed = run(*command)
            assert failed.exit_code == 1 and says in failed.stderr, (command, failed.output)
        failed = run("silence", "--alert", prefix, "--reason", "x")
        assert failed.exit_code == 1 and says in failed.stderr
    shown = run("show", "3f2b")
    assert shown.exit_code == 0 and "no receiver configured (email)" in shown.output
    silenced = run("silence", "--alert", "3f2b", "--for", "1h", "--reason", "known")
    assert silenced.exit_code == 0 and "OTHR, slump" in silenced.output
    with Outbox(outbox_path(settings)) as outbox:
        assert [a.alert_id for a in outbox.acks(first.alert_id)] == [first.alert_id]
        assert outbox.acks("3f2a9c") == []  # the full id was stored, not the prefix
        assert outbox.is_silenced("OTHR", "slump", datetime.now(UTC))
        assert not outbox.is_silenced("ACME", "slump", datetime.now(UTC))


def test_alerts_list_says_late_undeliverable_and_no_receiver(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    env = {"SURVEIL_STATE_DIR": str(settings.state_dir), "COLUMNS": "250"}
    alerts = [
        _alert().model_copy(update={"alert_id": f"{n}" * 32, "ticker": ticker})
        for n, ticker in enumerate(("LATE", "GONE", "NONE"))
    ]
    warehouse = open_warehouse(settings)
    try:
        Store(warehouse).write_alerts(alerts)
    finally:
        warehouse.close()
    now = datetime.now(UTC)
    with Outbox(outbox_path(settings), give_up_after=3600) as outbox:
        outbox.put(alerts[0], ["slack"], f"{alerts[0].alert_id}:firing:0")
        outbox.put(alerts[1], ["slack"], f"{alerts[1].alert_id}:firing:0")
        outbox.put(alerts[2], [], f"{alerts[2].alert_id}:firing:0", unconfigured=["*"])
        outbox.late(now + timedelta(minutes=11), 600)
        gone = [p for p in outbox.due(now + timedelta(seconds=1)) if p.alert.ticker == "GONE"]
        down = Delivery(channel="slack", ok=False, status=500, detail="down")
        outbox.record(gone[0], down, now + timedelta(hours=2))
    listed = CliRunner().invoke(
        cli, ["alerts", "list", "--from", "2026-03-01", "--to", "2026-03-03"], env=env
    )
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[3].strip(): line for line in listed.output.splitlines() if "│" in line}
    assert "slack: LATE, retrying (0)" in rows["LATE"]
    assert "slack: UNDELIVERABLE, gave up (1)" in rows["GONE"]
    assert "no receiver configured" in rows["NONE"]


def _one_alert(tmp_path: Path, alert_id: str) -> dict[str, str]:
    """A state folder whose ClickHouse and outbox hold one alert; return the CLI's env."""
    settings = Settings(_env_file=None, state_dir=tmp_path / "state")  # type: ignore[call-arg]
    alert = _alert().model_copy(update={"alert_id": alert_id})
    warehouse = open_warehouse(settings)
    try:
        Store(warehouse).write_alerts([alert])
    finally:
        warehouse.close()
    outbox_path(settings).parent.mkdir(parents=True)
    with Outbox(outbox_path(settings)) as outbox:
        outbox.put(alert, ["slack"], f"{alert_id}:firing:0")
    return {"SURVEIL_STATE_DIR": str(settings.state_dir)}


def test_alerts_list_never_cuts_the_id_at_80_columns(tmp_path: Path) -> None:
    alert_id = "168b" + "0123456789abcdef" * 2  # 36 characters, as long as a UUID
    env = {**_one_alert(tmp_path, alert_id), "COLUMNS": "80"}
    listed = CliRunner().invoke(
        cli, ["alerts", "list", "--from", "2026-03-01", "--to", "2026-03-03"], env=env
    )
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    assert any(f"│ {alert_id} │" in line for line in listed.output.splitlines()), listed.output


def test_alerts_show_prints_each_time_with_one_zone(tmp_path: Path) -> None:
    env = _one_alert(tmp_path, "a" * 32)
    shown = CliRunner().invoke(cli, ["alerts", "show", "aaaa"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "+00:00" not in shown.output
    assert "fired 2026-03-02 14:00:00 UTC;" in shown.output
    assert "window 2026-03-02 13:00:00 .. 2026-03-02 14:00:00 UTC" in shown.output
    assert "    2026-03-02 14:00:00 UTC  -0.80  wire  " in shown.output


def test_silence_refuses_an_unknown_rule_with_a_suggestion(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: slump\n    kind: threshold\n    threshold: -0.3\n"
        "  - name: burst\n    kind: threshold\n    threshold: -0.5\n"
    )
    env = {**_one_alert(tmp_path, "a" * 32), "SURVEIL_ALERT_RULES": str(rules)}
    base = ["alerts", "silence", "--for", "1h", "--reason", "x", "--rule"]
    typo = CliRunner().invoke(cli, [*base, "slmp"], env=env)
    assert (typo.exit_code, typo.stderr) == (
        1,
        "error: no rule 'slmp' in the configured rules: did you mean 'slump'?\n",
    )
    unknown = CliRunner().invoke(cli, [*base, "no_such_rule"], env=env)
    assert unknown.exit_code == 1
    assert "no rule 'no_such_rule' in the configured rules: expected one of burst, slump" in (
        unknown.stderr
    )
    ok = CliRunner().invoke(cli, [*base, "slump"], env=env)
    assert ok.exit_code == 0 and "any ticker, slump" in ok.output
    with Outbox(outbox_path(Settings(_env_file=None, state_dir=tmp_path / "state"))) as outbox:  # type: ignore[call-arg]
        assert [s.rule for s in outbox.silences(datetime.now(UTC))] == ["slump"]


def test_silence_for_needs_a_unit(tmp_path: Path) -> None:
    env = _one_alert(tmp_path, "a" * 32)
    base = ["alerts", "silence", "--ticker", "ACME", "--reason", "x", "--for"]
    bare = CliRunner().invoke(cli, [*base, "2"], env=env)
    assert bare.exit_code == 2
    assert "'2': give a number with a unit, s, m, h or d (e.g. 30m, 2h, 1d)" in bare.stderr
    with Outbox(outbox_path(Settings(_env_file=None, state_dir=tmp_path / "state"))) as outbox:  # type: ignore[call-arg]
        assert outbox.silences(datetime.now(UTC)) == []
    minutes = CliRunner().invoke(cli, [*base, "90m"], env=env)
    assert minutes.exit_code == 0, minutes.output
