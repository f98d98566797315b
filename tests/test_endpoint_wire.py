"""The worker endpoint's parts without a worker: values on the wire both ways, the token
file, and which requests it serves (the endpoint itself: test_endpoint)."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from infra.errors import ConfigError, DecodeError
from surveil.quant.server import check_request
from surveil.quant.token import ensure_token, read_token, token_path
from surveil.quant.wire import decode, encode


def test_datetimes_travel_as_iso_with_offset_both_ways() -> None:
    paris = timezone(timedelta(hours=2))
    value = {"at": datetime(2026, 3, 1, 9, 30, 0, 5000, tzinfo=paris), "on": date(2026, 3, 1)}
    sent = encode(value)
    assert sent == {
        "at": {"$datetime": "2026-03-01T09:30:00.005000+02:00"},
        "on": {"$date": "2026-03-01"},
    }
    assert decode(sent) == value
    assert decode(sent)["at"].utcoffset() == timedelta(hours=2)
    # clickhouse-connect returns UTC datetimes naive: the worker sends them as UTC.
    naive = datetime(2026, 3, 1, 9, 30)  # noqa: DTZ001 - what the driver returns
    assert encode([naive], naive_is_utc=True) == [{"$datetime": "2026-03-01T09:30:00+00:00"}]
    assert decode(encode([naive], naive_is_utc=True)) == [naive.replace(tzinfo=UTC)]
    other = [Decimal("1.50"), UUID(int=1), b"ab", (1, "x"), None]
    assert encode(other) == ["1.50", "00000000-0000-0000-0000-000000000001", "ab", [1, "x"], None]


def test_naive_datetimes_are_refused_both_ways() -> None:
    with pytest.raises(ConfigError, match="no time zone"):
        encode({"start": datetime(2026, 3, 1)})  # noqa: DTZ001 - the mistake under test
    with pytest.raises(DecodeError, match="no UTC offset"):
        decode({"$datetime": "2026-03-01T09:30:00"})


def test_the_token_file_is_private_and_kept(tmp_path: Path) -> None:
    path = token_path(tmp_path / "state")
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32 and read_token(path) == token
    path.chmod(0o644)  # e.g. restored from a backup
    assert ensure_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    assert read_token(path) is None
    assert ensure_token(path) != token  # deleting the file changes the token


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "127.0.0.1:6066", "Authorization": "Bearer t0ken"}, None),
        ({"Host": "LOCALHOST", "Authorization": "bearer t0ken"}, None),
        (
            {"Host": "[::1]:6066", "Origin": "https://[::1]:6066", "Authorization": "Bearer t0ken"},
            None,
        ),
        ({"Host": "127.0.0.1:6066"}, 401),
        ({"Host": "127.0.0.1:6066", "Authorization": "Bearer t0ken2"}, 401),
        ({"Host": "127.0.0.1:6066", "Authorization": "Basic t0ken"}, 401),
        ({"Authorization": "Bearer t0ken"}, 403),
        ({"Host": "evil.example", "Authorization": "Bearer t0ken"}, 403),
        ({"Host": "localhost.evil.example", "Authorization": "Bearer t0ken"}, 403),
        ({"Host": "127.0.0.1@evil.example", "Authorization": "Bearer t0ken"}, 403),
        (
            {"Host": "127.0.0.1", "Origin": "http://evil.example", "Authorization": "Bearer t0ken"},
            403,
        ),
        ({"Host": "127.0.0.1", "Origin": "http://127.0.0.1.evil.example"}, 403),
        ({"Host": "evil.example"}, 403),  # the Host is judged first: a page learns nothing
    ],
)
def test_requests_are_judged_by_host_origin_and_token(
    headers: dict[str, str], status: int | None
) -> None:
    refusal = check_request(headers, "t0ken")
    assert (refusal and refusal[0]) == status
