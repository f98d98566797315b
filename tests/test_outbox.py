"""The outbox: idempotent puts, restarts, backoff, silences, acks (sending: test_deliverer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.outbox import Outbox, Put
from infra.errors import StateError
from streams.records import Alert, Delivery
from tests import records

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
KEY = "a1:firing:0"


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def alert(alert_id: str = "a1") -> Alert:
    return records.alert(
        T0, alert_id=alert_id, rule="neg_spike", documents=4, explanation="ACME is down"
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def small_outbox(folder: Path, clock: Clock) -> Outbox:
    """An outbox whose backoff runs 1, 2, 4, 8, 8 ... seconds."""
    return Outbox(folder / "outbox.db", base=1, cap=8, clock=clock)


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with small_outbox(tmp_path, clock) as box:
        yield box


def fail(channel: str = "slack") -> Delivery:
    return Delivery(channel=channel, ok=False, status=500, detail="boom", at=T0)


def test_put_is_idempotent_and_survives_reopen(tmp_path: Path, clock: Clock):
    with Outbox(tmp_path / "o.db", clock=clock) as box:
        assert box.put(alert(), ["slack", "email"], KEY) is True
        assert box.put(alert(), ["slack", "email"], KEY) is False
    with Outbox(tmp_path / "o.db", clock=clock) as box:
        assert box.put(alert(), ["slack"], KEY) is False
        assert box.put(alert(), ["slack"], "a1:firing:1") is True
        due = box.due(T0)
    assert sorted((p.key, p.channel) for p in due) == [
        ("a1:firing:0", "email"),
        ("a1:firing:0", "slack"),
        ("a1:firing:1", "slack"),
    ]
    assert due[0].alert == alert()


def test_a_corrupt_file_is_a_store_error_naming_it(tmp_path: Path):
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not sqlite" * 200)
    with pytest.raises(StateError, match="broken.db"):
        Outbox(path)


def test_backoff_grows_is_capped_and_gives_up_at_the_age_limit(tmp_path: Path, clock: Clock):
    box = Outbox(tmp_path / "o.db", base=1, cap=8, give_up_after=60, clock=clock, rand=lambda: 1)
    with box:
        box.put(alert(), ["slack"], KEY)
        waits, statuses = [], []
        while box.due(clock.now):
            [pending] = box.due(clock.now)
            statuses.append(box.record(pending, fail(), clock.now))
            outcome = box.deliveries("a1")[0]
            if outcome.next_at is not None and outcome.status == "pending":
                waits.append((outcome.next_at - clock.now).total_seconds())
                assert box.due(clock.advance(waits[-1] - 0.001)) == []
                clock.advance(0.001)
        assert waits == [1, 2, 4, 8, 8, 8, 8, 8, 8, 5]  # the last try is at the age limit
        assert statuses == ["pending"] * 10 + ["failed"]
        assert clock.now == T0 + timedelta(seconds=60)
        assert box.due(clock.advance(3600)) == []
        assert [a.delivery.ok for a in box.attempts("a1")] == [False] * 11
        assert box.deliveries("a1")[0].status == "failed"  # kept: undeliverable, not gone


def test_full_jitter_stays_under_the_ceiling(tmp_path: Path):
    with Outbox(tmp_path / "o.db", base=1, cap=8, rand=lambda: 0.25) as box:
        assert [box.delay(n) for n in (1, 2, 3, 4, 5, 10)] == [0.25, 0.5, 1, 2, 2, 2]


def test_silences_and_acks(outbox: Outbox, clock: Clock):
    sid = outbox.silence("ACME", None, T0 + timedelta(hours=1), "ops", "known issue")
    everything = outbox.silence(None, "halt", T0 + timedelta(hours=2), "ops", "")
    assert outbox.is_silenced("ACME", "neg_spike", T0)
    assert not outbox.is_silenced("OTHER", "neg_spike", T0)
    assert outbox.is_silenced("OTHER", "halt", T0)
    assert not outbox.is_silenced("ACME", "neg_spike", T0 + timedelta(hours=1))
    assert outbox.unsilence(sid) is True and outbox.unsilence(sid) is False
    assert [s.id for s in outbox.silences(T0)] == [everything]
    outbox.ack("a1", "ana", "looking")
    assert [(a.by, a.note, a.at) for a in outbox.acks("a1")] == [("ana", "looking", T0)]


def test_silences_written_by_another_connection_are_seen(outbox: Outbox, tmp_path: Path):
    with Outbox(tmp_path / "outbox.db") as cli:
        cli.silence("ACME", None, T0 + timedelta(hours=1), "cli", "")
    assert outbox.is_silenced("ACME", "any", T0)


def ok(channel: str = "slack") -> Delivery:
    return Delivery(channel=channel, ok=True, status=200, at=T0)


def test_prune_forgets_only_what_ended_before_the_cutoff_and_was_copied(
    outbox: Outbox, clock: Clock
):
    for alert_id in ("old", "stuck"):
        outbox.put(alert(alert_id), ["slack"], f"{alert_id}:firing:0")
    [old, stuck] = sorted(outbox.due(T0), key=lambda p: p.key)
    outbox.record(old, ok(), T0)
    outbox.record(stuck, fail(), T0)  # still pending: kept, with its attempts
    outbox.ack("old", "ana")
    expired = outbox.silence("ACME", None, T0 + timedelta(hours=1), "ana", "")
    lasting = outbox.silence("ACME", None, T0 + timedelta(days=90), "ana", "")
    clock.advance(40 * 86_400)
    outbox.put(alert("new"), ["slack"], "new:firing:0")
    [new] = [p for p in outbox.due(clock.now) if p.key == "new:firing:0"]
    outbox.record(new, ok(), clock.now)
    outbox.ack("new", "ana")
    cutoff = T0 + timedelta(days=30)

    assert outbox.prune(cutoff, attempts_upto=0, acks_upto=0, silences=set()) == 1
    assert outbox.attempts("old") != [] and outbox.acks("old") != []  # not copied yet

    copied = {expired, lasting}
    assert outbox.prune(cutoff, attempts_upto=99, acks_upto=99, silences=copied) == 3
    assert outbox.deliveries("old") == [] and outbox.attempts("old") == []
    assert outbox.acks("old") == []
    assert [o.status for o in outbox.deliveries("stuck")] == ["pending"]
    assert len(outbox.attempts("stuck")) == 1
    assert [o.status for o in outbox.deliveries("new")] == ["delivered"]
    assert [s.id for s, _ in outbox.all_silences()] == [lasting]
    # the price of forgetting: the old key would be delivered again if it were put again
    assert outbox.put(alert("old"), ["slack"], "old:firing:0") is True


def test_prune_keeps_the_newest_ids_so_sqlite_never_reuses_them(outbox: Outbox, clock: Clock):
    outbox.put(alert(), ["slack"], KEY)
    [pending] = outbox.due(T0)
    outbox.record(pending, ok(), T0)
    outbox.ack("a1", "ana")
    later = T0 + timedelta(days=365)
    assert outbox.prune(later, attempts_upto=99, acks_upto=99, silences=set()) == 1
    assert len(outbox.attempts("a1")) == 1 and len(outbox.acks("a1")) == 1


def test_a_notification_without_receiver_is_recorded_never_sent(outbox: Outbox, clock: Clock):
    assert outbox.put(alert(), [], KEY, unconfigured=["email"]) is True
    assert outbox.put(alert(), [], KEY, unconfigured=["email"]) is False
    assert outbox.due(clock.advance(3600)) == []
    [outcome] = outbox.deliveries("a1")
    assert (outcome.channel, outcome.status) == ("email", "unconfigured")
    assert [key for key, _ in outbox.unpublished()] == [KEY]  # still goes to the audit trail


def test_notifications_and_router_state_commit_together_and_survive_reopen(
    tmp_path: Path, clock: Clock
):
    with Outbox(tmp_path / "o.db", clock=clock) as box:
        rows = [("group", "ACME", "slump", '{"n": 1}'), ("source", "ACME", "slump", "{}")]
        assert box.commit([Put(alert(), KEY, ("slack",))], rows) == [True]
        box.commit([], [("source", "ACME", "slump", None), ("group", "ACME", "slump", "{}")])
    with Outbox(tmp_path / "o.db", clock=clock) as box:
        assert box.router_state() == [("group", "ACME", "slump", "{}")]
        assert [(k, a.alert_id) for k, a in box.unpublished()] == [(KEY, "a1")]
        box.mark_published([KEY])
        assert box.unpublished() == []
        assert box.put(alert(), ["slack"], KEY) is False


def test_a_version_1_outbox_is_upgraded_in_place(tmp_path: Path, clock: Clock):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute(
            "INSERT INTO outbox (key, channel, alert_id, state, alert, created, next_at)"
            " VALUES (?, 'slack', 'a1', 'firing', ?, 0, 0)",
            (KEY, alert().model_dump_json()),
        )
        conn.execute("PRAGMA user_version=1")
    conn.close()
    with Outbox(path, clock=clock) as box:
        assert [p.key for p in box.due(clock.now)] == [KEY]
        assert box.unpublished() == []  # version 1 published everything it put
        assert box.router_state() == []
        assert box.find_alerts("a") == {"a1": ("ACME", "neg_spike")}


V1_SCHEMA = """
CREATE TABLE outbox (key TEXT NOT NULL, channel TEXT NOT NULL, alert_id TEXT NOT NULL,
    state TEXT NOT NULL, alert TEXT NOT NULL, created INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL, done_at INTEGER, PRIMARY KEY (key, channel)) WITHOUT ROWID;
"""
