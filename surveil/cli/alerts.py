"""`surveil alerts` (the audit trail: list, show, ack, silence) and `surveil rules check`."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.markup import escape as markup_escape
from rich.table import Table

from alerts.journal import Attempt, Outcome
from alerts.outbox import NO_CHANNEL, Outbox
from alerts.ruleset import check_file
from infra.errors import ConfigError, SurveilError
from infra.yamlnodes import hint, seconds
from surveil.cli.base import Group, SettingsContext, pass_settings
from surveil.cli.console import err, out, warn
from surveil.cli.options import TS
from surveil.compose.runtime import alert_ruleset, outbox_path
from surveil.quant import connect

# A silence's length names its unit: a bare "2" reads as 2 hours to some and 2 s to others.
_WITH_UNIT = re.compile(r"^\s*\d+(?:\.\d+)?\s*[smhd]\s*$")


def _outbox(ctx: SettingsContext) -> Outbox:
    path = outbox_path(ctx.settings())
    path.parent.mkdir(parents=True, exist_ok=True)
    return Outbox(path)


def _resolve(ctx: SettingsContext, outbox: Outbox, prefix: str) -> tuple[str, str, str]:
    """Resolve an alert id or a prefix of one to exactly one alert: (id, ticker, rule).

    Looks in the outbox and in ClickHouse's ``alerts``.

    Raises:
        ConfigError: the prefix is empty, matches nothing, or matches more than one alert.
    """
    prefix = prefix.strip()
    if not prefix:
        msg = "give an alert id, or a unique prefix of one"
        raise ConfigError(msg)
    found = outbox.find_alerts(prefix)
    try:
        with connect(ctx.settings()) as db:
            frame = db.sql(
                "SELECT DISTINCT alert_id, ticker, rule FROM {db}.alerts "
                "WHERE startsWith(alert_id, {id:String}) ORDER BY alert_id LIMIT 10",
                {"id": prefix},
            )
        for row in _records(frame):
            found.setdefault(str(row["alert_id"]), (str(row["ticker"]), str(row["rule"])))
    except SurveilError as exc:  # the outbox alone still knows every recent alert
        warn(f"looked in the outbox only: {exc}")
    if not found:
        msg = f"no alert {prefix!r}"
        raise ConfigError(msg)
    if len(found) > 1:
        listed = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
        msg = (
            f"{prefix!r} is ambiguous: it begins {len(found)}{'+' if len(found) >= 10 else ''} "
            f"alerts ({listed}); give more of the id"
        )
        raise ConfigError(msg)
    [(alert_id, (ticker, rule))] = found.items()
    return alert_id, ticker, rule


@click.group("alerts", cls=Group)
def alerts_group() -> None:
    """The alert audit trail: list and show alerts, acknowledge them, silence tickers/rules."""


@alerts_group.command("list")
@click.option("--from", "start", type=TS, default=None, help="Fired at or after (default: 7d ago).")
@click.option("--to", "end", type=TS, default=None, help="Fired before (default: now).")
@click.option("--ticker", "tickers", multiple=True, help="Only this ticker (repeatable).")
@click.option("--state", type=click.Choice(["firing", "resolved"]), default=None)
@pass_settings
def alerts_list(
    ctx: SettingsContext,
    start: datetime | None,
    end: datetime | None,
    tickers: tuple[str, ...],
    state: str | None,
) -> None:
    """List alert states with their delivery status and acknowledgements."""
    end = end or datetime.now(UTC) + timedelta(seconds=1)
    start = start or end - timedelta(days=7)
    with connect(ctx.settings()) as db:
        frame = db.alerts(start, end, list(tickers) or None, state)
    with _outbox(ctx) as outbox:
        rows = [
            (
                r,
                _delivery_summary(outbox, r["alert_id"], r["state"]),
                len(outbox.acks(r["alert_id"])),
            )
            for r in _records(frame)
        ]
    if not rows:
        err.print("no alerts in range")
        return
    table = Table(title="alerts", caption="times in UTC")
    table.add_column("fired", overflow="fold")
    # The id is what ack, show and silence take: it is never cut, the other columns give.
    longest = max(len(r["alert_id"]) for r, _, _ in rows)
    table.add_column("alert", no_wrap=True, min_width=longest)
    for column in ("ticker", "rule", "severity", "state", "value", "docs", "delivery", "acks"):
        table.add_column(column, overflow="fold")
    for r, delivery, acks in rows:
        table.add_row(
            _utc(r["fired_at"], zone=False),
            r["alert_id"],
            r["ticker"],
            r["rule"],
            r["severity"],
            r["state"],
            f"{r['value']:+.3f}",
            str(r["documents"]),
            delivery,
            str(acks),
        )
    out.print(table)


def _utc(value: Any, *, zone: bool = True) -> str:
    """Format a time (aware datetime, or ISO text as in the evidence JSON) in UTC, once."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}" + (" UTC" if zone else "")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _delivery_summary(outbox: Outbox, alert_id: str, state: str) -> str:
    outcomes = [o for o in outbox.deliveries(alert_id) if o.state == state]
    if not outcomes:
        return "-"
    return ", ".join(_outcome(o) for o in outcomes)


def _outcome(o: Outcome) -> str:
    if o.status == "unconfigured":
        return "no receiver configured" + ("" if o.channel == NO_CHANNEL else f" ({o.channel})")
    if o.status == "failed":
        return f"{o.channel}: UNDELIVERABLE, gave up ({o.attempts})"
    if o.status == "pending" and o.late_at is not None:
        return f"{o.channel}: LATE, retrying ({o.attempts})"
    return f"{o.channel}: {o.status} ({o.attempts})"


@alerts_group.command("show")
@click.argument("alert_id")
@pass_settings
def alerts_show(ctx: SettingsContext, alert_id: str) -> None:
    """Show one alert (an id or a unique prefix): numbers, evidence, attempts, acks."""
    with _outbox(ctx) as outbox:
        full_id, _, _ = _resolve(ctx, outbox, alert_id)
        attempts = outbox.attempts(full_id)
        acks = outbox.acks(full_id)
        outcomes = outbox.deliveries(full_id)
    with connect(ctx.settings()) as db:
        frame = db.sql(
            "SELECT alert_id, state, ticker, rule, severity, fired_at, value, threshold, "
            "documents, window_start, window_end, explanation, evidence "
            "FROM {db}.alerts FINAL WHERE alert_id = {id:String} "
            "ORDER BY fired_at, state",
            {"id": full_id},
        )
    if frame.empty:
        out.print(f"{full_id}: not in ClickHouse's alerts table yet")
    for row in _records(frame):
        _print_state(full_id, row)
    for o in outcomes:
        out.print(f"{o.state} {o.key}: {_outcome(o)}", highlight=False, markup=False)
    _print_attempts(attempts)
    for ack in acks:
        out.print(f"acknowledged by {ack.by} at {ack.at:%Y-%m-%d %H:%M:%S}: {ack.note}")


def _print_state(alert_id: str, row: dict[str, Any]) -> None:
    """Print one state of an alert: its numbers, explanation and evidence documents."""
    out.print(
        f"[bold]{row['state'].upper()}[/bold] {row['ticker']} {row['rule']} "
        f"({row['severity']}) {alert_id}\n  fired {_utc(row['fired_at'])}; value "
        f"{row['value']:+.3f}, threshold {row['threshold']:+.3f}, {row['documents']} "
        f"documents, window {_utc(row['window_start'], zone=False)} .. "
        f"{_utc(row['window_end'])}\n  "
        f"{markup_escape(str(row['explanation']))}",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    for doc in json.loads(row["evidence"] or "[]"):
        out.print(
            f"    {_utc(doc['published_at'])}  {doc['score']:+.2f}  {doc['source']}  "
            f"{doc['title']}  {doc['url']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _print_attempts(attempts: list[Attempt]) -> None:
    out.print("[bold]delivery attempts[/bold]" if attempts else "no delivery attempts")
    for attempt in attempts:
        d = attempt.delivery
        status = "ok" if d.ok else "failed"
        out.print(
            f"  {d.at:%Y-%m-%d %H:%M:%S}  {d.channel}  {status}  {d.status or ''}  {d.detail}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@alerts_group.command("ack")
@click.argument("alert_id")
@click.option("--by", default=None, help="Who acknowledges (default: the login name).")
@click.option("--note", default="", help="Why, or what was done.")
@pass_settings
def alerts_ack(ctx: SettingsContext, alert_id: str, by: str | None, note: str) -> None:
    """Acknowledge an alert, by id or a unique prefix (recorded in the audit trail)."""
    with _outbox(ctx) as outbox:
        full_id, ticker, rule = _resolve(ctx, outbox, alert_id)
        outbox.ack(full_id, by or getpass.getuser(), note)
    out.print(f"acknowledged {full_id} ({ticker} {rule})", highlight=False)


@alerts_group.command("silence")
@click.option("--ticker", default=None, help="Silence this ticker (default: any).")
@click.option("--rule", default=None, help="Silence this rule (default: any).")
@click.option(
    "--alert",
    "alert_id",
    default=None,
    help="Silence the ticker and rule of this alert (an id or a unique prefix).",
)
@click.option("--for", "duration", default="1h", show_default=True, help="How long: 30m, 2h, 1d.")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--by", default=None, help="Who silences (default: the login name).")
@pass_settings
def alerts_silence(
    ctx: SettingsContext,
    ticker: str | None,
    rule: str | None,
    alert_id: str | None,
    duration: str,
    reason: str,
    by: str | None,
) -> None:
    """Hold notifications of a ticker and/or rule for a while; the worker honours it live."""
    if alert_id is not None and (ticker is not None or rule is not None):
        msg = "give --alert, or --ticker and/or --rule, not both"
        raise click.UsageError(msg)
    if ticker is None and rule is None and alert_id is None:
        msg = "give --ticker, --rule, both, or --alert (silencing everything is too wide)"
        raise click.UsageError(msg)
    if not _WITH_UNIT.match(duration):
        msg = f"{duration!r}: give a number with a unit, s, m, h or d (e.g. 30m, 2h, 1d)"
        raise click.BadParameter(msg, param_hint="--for")
    until = datetime.now(UTC) + timedelta(seconds=seconds(duration, "--for"))
    if rule is not None:
        names = [r.name for r in alert_ruleset(ctx.settings()).rules]
        if rule not in names:
            msg = f"no rule {rule!r} in the configured rules: {hint(rule, names)}"
            raise ConfigError(msg)
    with _outbox(ctx) as outbox:
        if alert_id is not None:
            _, ticker, rule = _resolve(ctx, outbox, alert_id)
        silence_id = outbox.silence(ticker, rule, until, by or getpass.getuser(), reason)
    out.print(
        f"silence {silence_id}: {ticker or 'any ticker'}, {rule or 'any rule'} "
        f"until {until:%Y-%m-%d %H:%M} UTC"
    )


@alerts_group.command("silences")
@pass_settings
def alerts_silences(ctx: SettingsContext) -> None:
    """List the silences in force."""
    with _outbox(ctx) as outbox:
        active = outbox.silences(datetime.now(UTC))
    if not active:
        out.print("no silences in force")
    for s in active:
        out.print(
            f"{s.id}  {s.ticker or '*'}  {s.rule or '*'}  until {s.until:%Y-%m-%d %H:%M} UTC  "
            f"by {s.by}: {s.reason}",
            highlight=False,
            soft_wrap=True,
        )


@alerts_group.command("unsilence")
@click.argument("silence_id")
@pass_settings
def alerts_unsilence(ctx: SettingsContext, silence_id: str) -> None:
    """End a silence now."""
    with _outbox(ctx) as outbox:
        found = outbox.unsilence(silence_id)
    if not found:
        err.print(f"no silence {silence_id}")
        raise click.exceptions.Exit(1)
    out.print(f"silence {silence_id} ended")


@click.group("rules", cls=Group)
def rules_group() -> None:
    """Alert rules files."""


@rules_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def rules_check(file: Path) -> None:
    """Validate a rules file; print every problem with file, line and field; exit 1 on any."""
    problems = check_file(file)
    for problem in problems:
        err.print(problem, highlight=False, markup=False, soft_wrap=True)
    if problems:
        err.print(f"{len(problems)} problem(s) in {file}")
        raise click.exceptions.Exit(1)
    out.print(f"{file}: ok")
