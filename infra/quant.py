"""The quant queries: sentiment series, documents and alerts as pandas DataFrames.

Every function takes a `Reader` (anything with the `Warehouse.query` signature: an
`infra.db.ReadOnlyReader`, the running worker's read-only endpoint, or the warehouse itself)
and the database name, so the same SQL runs whichever way the data is reached. Times are
timezone-aware and UTC; ``start`` is inclusive, ``end`` exclusive.

Point in time: without ``as_of`` a series comes from the per-minute rollup; with it, from
the raw scores, keeping only rows both scored and ingested at or before ``as_of`` (and
published before it), so a backtest sees what was known then and nothing later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from infra.errors import ConfigError


class Reader(Protocol):
    """Runs a read-only query; ``{db}`` in the SQL names the database."""

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...


# For a bare Warehouse (tests, benchmarks): 2 reads and still lets settings change per query.
# A ReadOnlyReader and the worker's endpoint ignore it: their sessions are readonly=1 already.
READ_ONLY = {"readonly": 2}
SERIES_COLUMNS = ["ticker", "bucket", "documents", "mean_score", "negative_share", "weighted_score"]


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
    if minutes % 1440 == 0:
        name = f"{minutes // 1440}d"
    elif minutes % 60 == 0:
        name = f"{minutes // 60}h"
    else:
        name = f"{minutes}min"
    return Freq(name, minutes)


def utc(value: datetime) -> datetime:
    """Return an aware datetime in UTC.

    Raises:
        ConfigError: the datetime is naive (no zone), which would be guessed otherwise.
    """
    if value.tzinfo is None:
        msg = f"{value.isoformat()} has no time zone: pass an aware datetime (e.g. UTC)"
        raise ConfigError(msg)
    return value.astimezone(UTC)


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = utc(start), utc(end)
    if end <= start:
        msg = f"empty range: {start.isoformat()} is not before {end.isoformat()}"
        raise ConfigError(msg)
    return start, end


def sentiment(
    reader: Reader,
    tickers: Sequence[str] | str,
    start: datetime,
    end: datetime,
    freq: str = "1min",
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """Return the sentiment series of tickers: one row per (ticker, bucket) with documents.

    Columns: ticker, bucket (UTC), documents, mean_score, negative_share, weighted_score
    (mean score weighted by each ticker's relevance to its document).
    """
    names = [tickers] if isinstance(tickers, str) else list(tickers)
    start, end = _range(start, end)
    step = parse_freq(freq).minutes
    bucket = f"toStartOfInterval({{col}}, INTERVAL {step} MINUTE, 'UTC')"
    params: dict[str, Any] = {"tickers": names, "start": start, "end": end}
    if as_of is None:
        sql = f"""
            SELECT ticker, {bucket.format(col="minute")} AS bucket,
                   sum(documents) AS n, sum(score_sum) / n, sum(negatives) / n,
                   if(sum(relevance_sum) > 0, sum(weighted_sum) / sum(relevance_sum), NULL)
            FROM {{db}}.sentiment_1m
            WHERE ticker IN {{tickers:Array(String)}}
              AND minute >= toStartOfMinute({{start:DateTime64(3, 'UTC')}})
              AND minute < {{end:DateTime64(3, 'UTC')}}
            GROUP BY ticker, bucket
            ORDER BY ticker, bucket
        """  # noqa: S608 - the interval is an int we computed; values are bound parameters
    else:
        params["as_of"] = utc(as_of)
        sql = f"""
            SELECT ticker, {bucket.format(col="published_at")} AS bucket,
                   count() AS n, sum(toFloat64(score)) / n, countIf(label = 'negative') / n,
                   if(sum(relevance) > 0,
                      sum(toFloat64(score) * relevance) / sum(toFloat64(relevance)), NULL)
            FROM {{db}}.scores FINAL
            WHERE ticker IN {{tickers:Array(String)}}
              AND published_at >= {{start:DateTime64(3, 'UTC')}}
              AND published_at < {{end:DateTime64(3, 'UTC')}}
              AND published_at <= {{as_of:DateTime64(3, 'UTC')}}
              AND scored_at <= {{as_of:DateTime64(3, 'UTC')}}
              AND ingested_at <= {{as_of:DateTime64(3, 'UTC')}}
            GROUP BY ticker, bucket
            ORDER BY ticker, bucket
        """  # noqa: S608
    _, rows = reader.query(sql, params, READ_ONLY)
    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame["documents"] = frame["documents"].astype("int64")
    for column in ("mean_score", "negative_share", "weighted_score"):
        frame[column] = frame[column].astype("float64")
    return frame


DOCUMENT_COLUMNS = [
    "published_at",
    "doc_id",
    "ticker",
    "source",
    "kind",
    "title",
    "url",
    "label",
    "score",
    "event_type",
    "event_prob",
    "relevance",
    "dup_of",
    "model_version",
    "scored_at",
    "ingested_at",
]


def documents(
    reader: Reader,
    ticker: str,
    start: datetime,
    end: datetime,
    as_of: datetime | None = None,
    limit: int = 10_000,
) -> pd.DataFrame:
    """Return a ticker's scored documents in a range, oldest first, with their scores."""
    start, end = _range(start, end)
    params: dict[str, Any] = {"ticker": ticker, "start": start, "end": end, "limit": limit}
    known = ""
    if as_of is not None:
        params["as_of"] = utc(as_of)
        known = (
            "AND s.scored_at <= {as_of:DateTime64(3, 'UTC')} "
            "AND s.ingested_at <= {as_of:DateTime64(3, 'UTC')} "
            "AND s.published_at <= {as_of:DateTime64(3, 'UTC')}"
        )
    sql = f"""
        SELECT s.published_at, s.doc_id, s.ticker, s.source, s.kind, d.title, d.url, s.label,
               s.score, s.event_type, s.event_prob, s.relevance, d.dup_of, s.model_version,
               s.scored_at, s.ingested_at
        FROM {{db}}.scores AS s FINAL
        LEFT JOIN (SELECT doc_id, title, url, dup_of FROM {{db}}.documents FINAL) AS d
            ON d.doc_id = s.doc_id
        WHERE s.ticker = {{ticker:String}}
          AND s.published_at >= {{start:DateTime64(3, 'UTC')}}
          AND s.published_at < {{end:DateTime64(3, 'UTC')}}
          {known}
        ORDER BY s.published_at, s.doc_id
        LIMIT {{limit:UInt32}}
    """  # noqa: S608 - fixed SQL; values are bound parameters
    _, rows = reader.query(sql, params, READ_ONLY)
    frame = pd.DataFrame(rows, columns=DOCUMENT_COLUMNS)
    for column in ("published_at", "scored_at", "ingested_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


ALERT_COLUMNS = [
    "fired_at",
    "alert_id",
    "ticker",
    "rule",
    "severity",
    "state",
    "value",
    "threshold",
    "documents",
    "window_start",
    "window_end",
    "explanation",
]


def alerts(
    reader: Reader,
    start: datetime,
    end: datetime,
    tickers: Sequence[str] | str | None = None,
    state: str | None = None,
) -> pd.DataFrame:
    """Return the alert states (firing, resolved) fired in a range, oldest first."""
    start, end = _range(start, end)
    params: dict[str, Any] = {"start": start, "end": end}
    where = ""
    if tickers is not None:
        params["tickers"] = [tickers] if isinstance(tickers, str) else list(tickers)
        where += " AND ticker IN {tickers:Array(String)}"
    if state is not None:
        params["state"] = state
        where += " AND state = {state:String}"
    sql = f"""
        SELECT fired_at, alert_id, ticker, rule, severity, state, value, threshold, documents,
               window_start, window_end, explanation
        FROM {{db}}.alerts FINAL
        WHERE fired_at >= {{start:DateTime64(3, 'UTC')}} AND fired_at < {{end:DateTime64(3, 'UTC')}}
        {where}
        ORDER BY fired_at, alert_id, state
    """  # noqa: S608 - fixed SQL; values are bound parameters
    _, rows = reader.query(sql, params, READ_ONLY)
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    for column in ("fired_at", "window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
