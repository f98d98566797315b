"""`surveil alerts` (the audit trail: list, show, ack, silence) and `surveil rules check`."""

from __future__ import annotations

import getpass
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from infra.errors import SurveilError
from surveil.cli_quant import TS

console = Console()
err_console = Console(stderr=True)
# A silence's length names its unit: a bare "2" reads as 2 hours to some and 2 s to others.
_WITH_UNIT = re.compile(r"^\s*\d+(?:\.\d+)?\s*[smhd]\s*$")


def _fail(exc: SurveilError) -> NoReturn:
    err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    sys.exit(1)


def _outbox(ctx: click.Context) -> Any:
    from alerts.outbox import Outbox  # noqa: PLC0415
    from surveil.runtime import outbox_path  # noqa: PLC0415

    path = outbox_path(ctx.obj.settings())
    path.parent.mkdir(parents=True, exist_ok=True)
    return Outbox(path)


def _resolve(ctx: click.Context, outbox: Any, prefix: str) -> tuple[str, str, str]:
    """Resolve an alert id or a prefix of one to exactly one alert: (id, ticker, rule).

    Looks in the outbox and in ClickHouse's ``alerts``; exits 1 with a message when the
    prefix is empty, matches nothing, or matches more than one alert.
    """
    from surveil.api import connect  # noqa: PLC0415

    prefix = prefix.strip()
    if not prefix:
        err_console.print("[red]error:[/red] give an alert id, or a unique prefix of one")
        sys.exit(1)
    found = outbox.find_alerts(prefix)
    try:
        with connect(ctx.obj.settings()) as db:
            frame = db.sql(
                "SELECT DISTINCT alert_id, ticker, rule FROM {db}.alerts "
                "WHERE startsWith(alert_id, {id:String}) ORDER BY alert_id LIMIT 10",
                {"id": prefix},
            )
        for row in _records(frame):
            found.setdefault(str(row["alert_id"]), (str(row["ticker"]), str(row["rule"])))
    except SurveilError as exc:  # the outbox alone still knows every recent alert
        err_console.print(f"warning: looked in the outbox only: {exc}", highlight=False)
    if not found:
        err_console.print(f"[red]error:[/red] no alert {markup_escape(prefix)!r}")
        sys.exit(1)
    if len(found) > 1:
        listed = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
        err_console.print(
            f"[red]error:[/red] {markup_escape(prefix)!r} is ambiguous: it begins "
            f"{len(found)}{'+' if len(found) >= 10 else ''} alerts ({listed}); give more of the id",
            soft_wrap=True,
        )
        sys.exit(1)
    [(alert_id, (ticker, rule))] = found.items()
    return alert_id, ticker, rule


@click.group("alerts")
def alerts_group() -> None:
    """The alert audit trail: list and show alerts, acknowledge them, silence tickers/rules."""


@alerts_group.command("list")
@click.option("--from", "start", type=TS, default=None, help="Fired at or after (default: 7d ago).")
@click.option("--to", "end", type=TS, default=None, help="Fired before (default: now).")
@click.option("--ticker", "tickers", multiple=True, help="Only this ticker (repeatable).")
@click.option("--state", type=click.Choice(["firing", "resolved"]), default=None)
@click.pass_context
def alerts_list(
    ctx: click.Context,
    start: datetime | None,
    end: datetime | None,
    tickers: tuple[str, ...],
    state: str | None,
) -> None:
    """List alert states with their delivery status and acknowledgements."""
    from surveil.api import connect  # noqa: PLC0415

    end = end or datetime.now(UTC) + timedelta(seconds=1)
    start = start or end - timedelta(days=7)
    try:
        with connect(ctx.obj.settings()) as db:
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
    except SurveilError as exc:
        _fail(exc)
    if not rows:
        err_console.print("no alerts in range")
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
    console.print(table)


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


def _records(frame: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.to_dict("records")
    return records


def _delivery_summary(outbox: Any, alert_id: str, state: str) -> str:
    outcomes = [o for o in outbox.deliveries(alert_id) if o.state == state]
    if not outcomes:
        return "-"
    return ", ".join(_outcome(o) for o in outcomes)


def _outcome(o: Any) -> str:
    from alerts.outbox import NO_CHANNEL  # noqa: PLC0415

    if o.status == "unconfigured":
        return "no receiver configured" + ("" if o.channel == NO_CHANNEL else f" ({o.channel})")
    if o.status == "failed":
        return f"{o.channel}: UNDELIVERABLE, gave up ({o.attempts})"
    if o.status == "pending" and o.late_at is not None:
        return f"{o.channel}: LATE, retrying ({o.attempts})"
    return f"{o.channel}: {o.status} ({o.attempts})"


@alerts_group.command("show")
@click.argument("alert_id")
@click.pass_context
def alerts_show(ctx: click.Context, alert_id: str) -> None:
    """Show one alert (an id or a unique prefix): numbers, evidence, attempts, acks."""
    from surveil.api import connect  # noqa: PLC0415

    try:
        with _outbox(ctx) as outbox:
            full_id, _, _ = _resolve(ctx, outbox, alert_id)
            attempts = outbox.attempts(full_id)
            acks = outbox.acks(full_id)
            outcomes = outbox.deliveries(full_id)
        with connect(ctx.obj.settings()) as db:
            frame = db.sql(
                "SELECT alert_id, state, ticker, rule, severity, fired_at, value, threshold, "
                "documents, window_start, window_end, explanation, evidence "
                "FROM {db}.alerts FINAL WHERE alert_id = {id:String} "
                "ORDER BY fired_at, state",
                {"id": full_id},
            )
    except SurveilError as exc:
        _fail(exc)
    if frame.empty:
        console.print(f"{full_id}: not in ClickHouse's alerts table yet")
    for row in _records(frame):
        console.print(
            f"[bold]{row['state'].upper()}[/bold] {row['ticker']} {row['rule']} "
            f"({row['severity']}) {full_id}\n  fired {_utc(row['fired_at'])}; value "
            f"{row['value']:+.3f}, threshold {row['threshold']:+.3f}, {row['documents']} "
            f"documents, window {_utc(row['window_start'], zone=False)} .. "
            f"{_utc(row['window_end'])}\n  "
            f"{markup_escape(str(row['explanation']))}",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
        for doc in json.loads(row["evidence"] or "[]"):
            console.print(
                f"    {_utc(doc['published_at'])}  {doc['score']:+.2f}  {doc['source']}  "
                f"{doc['title']}  {doc['url']}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    for o in outcomes:
        console.print(f"{o.state} {o.key}: {_outcome(o)}", highlight=False, markup=False)
    console.print("[bold]delivery attempts[/bold]" if attempts else "no delivery attempts")
    for attempt in attempts:
        d = attempt.delivery
        status = "ok" if d.ok else "failed"
        console.print(
            f"  {d.at:%Y-%m-%d %H:%M:%S}  {d.channel}  {status}  {d.status or ''}  {d.detail}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for ack in acks:
        console.print(f"acknowledged by {ack.by} at {ack.at:%Y-%m-%d %H:%M:%S}: {ack.note}")


@alerts_group.command("ack")
@click.argument("alert_id")
@click.option("--by", default=None, help="Who acknowledges (default: the login name).")
@click.option("--note", default="", help="Why, or what was done.")
@click.pass_context
def alerts_ack(ctx: click.Context, alert_id: str, by: str | None, note: str) -> None:
    """Acknowledge an alert, by id or a unique prefix (recorded in the audit trail)."""
    try:
        with _outbox(ctx) as outbox:
            full_id, ticker, rule = _resolve(ctx, outbox, alert_id)
            outbox.ack(full_id, by or getpass.getuser(), note)
    except SurveilError as exc:
        _fail(exc)
    console.print(f"acknowledged {full_id} ({ticker} {rule})", highlight=False)


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
@click.pass_context
def alerts_silence(
    ctx: click.Context,
    ticker: str | None,
    rule: str | None,
    alert_id: str | None,
    duration: str,
    reason: str,
    by: str | None,
) -> None:
    """Hold notifications of a ticker and/or rule for a while; the worker honours it live."""
    from infra.yamlnodes import hint, seconds  # noqa: PLC0415
    from surveil.runtime import alert_ruleset  # noqa: PLC0415

    if alert_id is not None and (ticker is not None or rule is not None):
        msg = "give --alert, or --ticker and/or --rule, not both"
        raise click.UsageError(msg)
    if ticker is None and rule is None and alert_id is None:
        msg = "give --ticker, --rule, both, or --alert (silencing everything is too wide)"
        raise click.UsageError(msg)
    if not _WITH_UNIT.match(duration):
        msg = f"{duration!r}: give a number with a unit, s, m, h or d (e.g. 30m, 2h, 1d)"
        raise click.BadParameter(msg, param_hint="--for")
    try:
        until = datetime.now(UTC) + timedelta(seconds=seconds(duration, "--for"))
        if rule is not None:
            names = [r.name for r in alert_ruleset(ctx.obj.settings()).rules]
            if rule not in names:
                _fail(
                    SurveilError(f"no rule {rule!r} in the configured rules: {hint(rule, names)}")
                )
        with _outbox(ctx) as outbox:
            if alert_id is not None:
                _, ticker, rule = _resolve(ctx, outbox, alert_id)
            silence_id = outbox.silence(ticker, rule, until, by or getpass.getuser(), reason)
    except SurveilError as exc:
        _fail(exc)
    console.print(
        f"silence {silence_id}: {ticker or 'any ticker'}, {rule or 'any rule'} "
        f"until {until:%Y-%m-%d %H:%M} UTC"
    )


@alerts_group.command("silences")
@click.pass_context
def alerts_silences(ctx: click.Context) -> None:
    """List the silences in force."""
    try:
        with _outbox(ctx) as outbox:
            active = outbox.silences(datetime.now(UTC))
    except SurveilError as exc:
        _fail(exc)
    if not active:
        console.print("no silences in force")
    for s in active:
        console.print(
            f"{s.id}  {s.ticker or '*'}  {s.rule or '*'}  until {s.until:%Y-%m-%d %H:%M} UTC  "
            f"by {s.by}: {s.reason}",
            highlight=False,
            soft_wrap=True,
        )


@alerts_group.command("unsilence")
@click.argument("silence_id")
@click.pass_context
def alerts_unsilence(ctx: click.Context, silence_id: str) -> None:
    """End a silence now."""
    try:
        with _outbox(ctx) as outbox:
            found = outbox.unsilence(silence_id)
    except SurveilError as exc:
        _fail(exc)
    if not found:
        err_console.print(f"no silence {silence_id}")
        sys.exit(1)
    console.print(f"silence {silence_id} ended")


@click.group("rules")
def rules_group() -> None:
    """Alert rules files."""


@rules_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def rules_check(file: Path) -> None:
    """Validate a rules file; print every problem with file, line and field; exit 1 on any."""
    from alerts.ruleset import check_file  # noqa: PLC0415

    problems = check_file(file)
    for problem in problems:
        err_console.print(problem, highlight=False, markup=False, soft_wrap=True)
    if problems:
        err_console.print(f"{len(problems)} problem(s) in {file}")
        sys.exit(1)
    console.print(f"{file}: ok")
