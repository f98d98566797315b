"""Times and bucket widths: the moments a quant passes, in UTC, and the buckets of a range.

Times are timezone-aware and UTC; a range's ``start`` is inclusive, its ``end`` exclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pandas as pd

from infra.errors import ConfigError
from surveil.quant.frames import TIME

# One bucket width for the API, `surveil query sentiment`, `surveil plot` and `runs diff`:
# an hour holds a few documents per ticker (news, filings and posts are sparse per ticker), so
# its means say something, and a day of it is 24 rows, not 1,440 mostly empty ones.
DEFAULT_FREQ = "1h"

Moment = datetime | date | str


@dataclass(frozen=True)
class Freq:
    """A bucket width: its canonical name and length in minutes."""

    name: str
    minutes: int


_FREQ = re.compile(r"^\s*(\d+)\s*(m|min|minute|minutes|t|h|hour|hours|d|day|days)\s*$", re.I)
_MINUTES = {"m": 1, "min": 1, "minute": 1, "minutes": 1, "t": 1}
_MINUTES |= {"h": 60, "hour": 60, "hours": 60, "d": 1440, "day": 1440, "days": 1440}


def parse_freq(value: str) -> Freq:
    """Read a bucket width such as ``1min``, ``5m``, ``15min``, ``1h``, ``1d``.

    Raises:
        ConfigError: not a whole number of minutes, or under one minute.
    """
    match = _FREQ.match(value)
    if match is None or int(match.group(1)) < 1:
        msg = f"frequency {value!r}: use a whole number of minutes, hours or days (5min, 1h, 1d)"
        raise ConfigError(msg)
    minutes = int(match.group(1)) * _MINUTES[match.group(2).lower()]
    return Freq(freq_name(minutes), minutes)


def freq_name(minutes: int) -> str:
    """Return the canonical name of a width of whole minutes: ``1d``, ``2h``, ``90min``."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min"


def utc(value: Moment) -> datetime:
    """Return an aware datetime in UTC from a datetime, a date or an ISO 8601 string.

    A date is its midnight UTC; a string without a zone is UTC, as on the command line.

    Raises:
        ConfigError: a naive datetime (its zone would be a guess), or a string that is no
            ISO date or datetime.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            msg = f"{value!r} is not an ISO date or datetime (e.g. 2026-03-02T13:00Z)"
            raise ConfigError(msg) from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=UTC)
        msg = f"{value!r} is not a datetime, a date or an ISO string"
        raise ConfigError(msg)
    if value.tzinfo is None:
        msg = f"{value.isoformat()} has no time zone: pass an aware datetime (e.g. UTC)"
        raise ConfigError(msg)
    return value.astimezone(UTC)


def span(start: Moment, end: Moment) -> tuple[datetime, datetime]:
    """Return a range's ends in UTC.

    Raises:
        ConfigError: an end is no time (see `utc`), or the range is empty.
    """
    start, end = utc(start), utc(end)
    if end <= start:
        msg = f"empty range: {start.isoformat()} is not before {end.isoformat()}"
        raise ConfigError(msg)
    return start, end


def bucket_starts(start: datetime, end: datetime, step: int) -> pd.DatetimeIndex:
    """Return the starts of the ``step``-minute buckets that overlap [start, end)."""
    # toStartOfInterval(t, INTERVAL n MINUTE) counts n-minute steps from the Unix epoch, as
    # Timestamp.floor does: the same bucket starts as the queries give.
    width = pd.Timedelta(minutes=step)
    first = pd.Timestamp(start).floor(width)
    index = pd.date_range(first, end, freq=width, inclusive="left", name="bucket")
    return pd.DatetimeIndex(index.astype(TIME), name="bucket")
