"""Copy the outbox's journal (delivery attempts, acks, silences) into ClickHouse.

The outbox is written first, because it must work while ClickHouse is busy or down and
because the CLI writes acks and silences while the worker owns an embedded chDB folder.
The worker copies what is new into ClickHouse every few seconds, so the audit trail of an
alert (its rows in ``alerts`` plus these) can be queried in one place. Each copy starts
after the highest id already in ClickHouse, so a copy repeated after a crash adds nothing
(and the tables are ReplacingMergeTree on those ids besides).
"""

from __future__ import annotations

from datetime import datetime

from alerts.outbox import Outbox
from infra.db import Warehouse


def _version(removed: datetime | None) -> int:
    """A silence's row version in ClickHouse: 1 as set, 2 once ended early."""
    return 2 if removed is not None else 1


def sync(outbox: Outbox, warehouse: Warehouse) -> int:
    """Copy new attempts and acks, and every silence; return how many rows were written."""
    written = 0
    [(last_attempt,)] = warehouse.rows("SELECT max(id) FROM {db}.alert_deliveries")
    attempts = outbox.attempts_after(int(last_attempt or 0))
    written += warehouse.insert(
        "alert_deliveries",
        [
            [
                i,
                alert_id,
                a.key,
                a.delivery.channel,
                a.delivery.at,
                a.delivery.ok,
                a.delivery.status,
                a.delivery.detail,
            ]
            for i, alert_id, a in attempts
        ],  # fmt: skip
        ("id", "alert_id", "key", "channel", "at", "ok", "status", "detail"),
    )
    [(last_ack,)] = warehouse.rows("SELECT max(id) FROM {db}.alert_acks")
    acks = outbox.acks_after(int(last_ack or 0))
    written += warehouse.insert(
        "alert_acks",
        [[i, a.alert_id, a.by, a.note, a.at] for i, a in acks],
        ("id", "alert_id", "by", "note", "at"),
    )
    silences = outbox.all_silences()
    stored = {
        (str(sid), int(version))
        for sid, version in warehouse.rows(
            "SELECT id, max(version) FROM {db}.alert_silences GROUP BY id"
        )
    }
    rows = []
    for silence, removed in silences:
        version = _version(removed)
        if (silence.id, version) not in stored:
            rows.append(
                [silence.id, silence.ticker, silence.rule, silence.until, silence.by,
                 silence.reason, silence.created, removed, version]
            )  # fmt: skip
    written += warehouse.insert(
        "alert_silences",
        rows,
        ("id", "ticker", "rule", "until", "by", "reason", "created", "removed", "version"),
    )
    return written


def prune(outbox: Outbox, warehouse: Warehouse, before: datetime) -> int:
    """Forget in the outbox what ended before ``before`` and ClickHouse already holds."""
    [(last_attempt,)] = warehouse.rows("SELECT max(id) FROM {db}.alert_deliveries")
    [(last_ack,)] = warehouse.rows("SELECT max(id) FROM {db}.alert_acks")
    stored = {
        str(sid): int(version)
        for sid, version in warehouse.rows(
            "SELECT id, max(version) FROM {db}.alert_silences GROUP BY id"
        )
    }
    local = {s.id: _version(removed) for s, removed in outbox.all_silences()}
    return outbox.prune(
        before,
        attempts_upto=int(last_attempt or 0),
        acks_upto=int(last_ack or 0),
        silences={sid for sid, version in local.items() if stored.get(sid, 0) >= version},
    )
