"""The quant queries: sentiment series, documents and alerts as pandas DataFrames.

Every function takes a `Reader` (anything with the `Warehouse.query` signature: an
`infra.db.ReadOnlyReader`, the running worker's read-only endpoint, or the warehouse itself)
and the database name, so the same SQL runs whichever way the data is reached. Times are
timezone-aware and UTC; ``start`` is inclusive, ``end`` exclusive.

Point in time: without ``as_of`` a series comes from the per-minute rollup; with it, from
the raw scores, keeping only rows both scored and ingested at or before ``as_of`` (and
published before it), so a backtest sees what was known then and nothing later.

One model per series: models score on different scales, so a series never mixes two. Unless
``model`` names one, a series comes from the model that scored most recently among the asked
tickers' rows in the range (with ``as_of``: among the rows known then). That is the model
running now for a live range, and the model of the time for an old one; the model settings
name a folder or ``lexicon``, not a version, so they cannot say it without loading the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, Literal, Protocol

import numpy as np
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

# One bucket width for the API, `surveil query sentiment`, `surveil plot` and `runs diff`:
# an hour holds a few documents per ticker (news, filings and posts are sparse per ticker), so
# its means say something, and a day of it is 24 rows, not 1,440 mostly empty ones.
DEFAULT_FREQ = "1h"

# pandas' own types for these values, the same for an empty frame as for a full one.
TIME: Final = "datetime64[ns, UTC]"
TEXT = pd.StringDtype(na_value=np.nan)
SERIES_SCHEMA: dict[str, Any] = {
    "ticker": TEXT,
    "bucket": TIME,
    "documents": "int64",
    "mean_score": "float64",
    "negative_share": "float64",
    "weighted_score": "float64",
    "model_version": TEXT,
}
SERIES_COLUMNS = list(SERIES_SCHEMA)


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


Moment = datetime | date | str


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


def _range(start: Moment, end: Moment) -> tuple[datetime, datetime]:
    start, end = utc(start), utc(end)
    if end <= start:
        msg = f"empty range: {start.isoformat()} is not before {end.isoformat()}"
        raise ConfigError(msg)
    return start, end


def sentiment(
    reader: Reader,
    tickers: Sequence[str] | str,
    start: Moment,
    end: Moment,
    freq: str = DEFAULT_FREQ,
    as_of: Moment | None = None,
    *,
    model: str | None = None,
    fill: bool = False,
) -> pd.DataFrame:
    """Return the sentiment series of tickers: one row per (ticker, bucket) with documents.

    Columns: ticker, bucket (its start, UTC), documents, mean_score, negative_share,
    weighted_score (mean score weighted by each ticker's relevance to its document) and
    model_version (the one model the series comes from).

    Args:
        model: the model version to read; default: the one that scored most recently among
            these tickers' rows in the range (see the module docstring).
        fill: give every bucket of the range for every ticker asked, those without documents
            with 0 documents and NaN scores; default: only buckets with documents.
    """
    names = [tickers] if isinstance(tickers, str) else list(tickers)
    start, end = _range(start, end)
    step = parse_freq(freq).minutes
    bucket = f"toStartOfInterval({{col}}, INTERVAL {step} MINUTE, 'UTC')"
    params: dict[str, Any] = {"tickers": names, "start": start, "end": end}
    if model is not None:
        params["model"] = model
    if as_of is None:
        # The range filters the per-minute rows before they are grouped: the query reads the
        # granules of its tickers, model and range, never the whole rollup.
        where = """
            ticker IN {tickers:Array(String)}
            AND minute >= toStartOfMinute({start:DateTime64(3, 'UTC')})
            AND minute < {end:DateTime64(3, 'UTC')}"""
        chosen = (
            "({model:String})"
            if model is not None
            else f"""(SELECT model_version FROM {{db}}.sentiment_1m_by_model WHERE {where}
                 GROUP BY model_version ORDER BY max(last_scored) DESC, model_version DESC
                 LIMIT 1)"""  # noqa: S608 - fixed SQL; values are bound parameters
        )
        sql = f"""
            SELECT ticker, {bucket.format(col="minute")} AS bucket,
                   sum(documents) AS n, sum(score_sum) / n, sum(negatives) / n,
                   if(sum(relevance_sum) > 0, sum(weighted_sum) / sum(relevance_sum), NULL),
                   any(model_version)
            FROM {{db}}.sentiment_1m_by_model
            WHERE {where} AND model_version IN {chosen}
            GROUP BY ticker, bucket
            ORDER BY ticker, bucket
        """  # noqa: S608 - the interval is an int we computed; values are bound parameters
    else:
        params["as_of"] = utc(as_of)
        where = """
            ticker IN {tickers:Array(String)}
            AND published_at >= {start:DateTime64(3, 'UTC')}
            AND published_at < {end:DateTime64(3, 'UTC')}
            AND published_at <= {as_of:DateTime64(3, 'UTC')}
            AND scored_at <= {as_of:DateTime64(3, 'UTC')}
            AND ingested_at <= {as_of:DateTime64(3, 'UTC')}"""
        chosen = (
            "({model:String})"
            if model is not None
            else f"""(SELECT model_version FROM {{db}}.scores FINAL WHERE {where}
                 GROUP BY model_version ORDER BY max(scored_at) DESC, model_version DESC
                 LIMIT 1)"""  # noqa: S608
        )
        sql = f"""
            SELECT ticker, {bucket.format(col="published_at")} AS bucket,
                   count() AS n, sum(toFloat64(score)) / n, countIf(label = 'negative') / n,
                   if(sum(relevance) > 0,
                      sum(toFloat64(score) * relevance) / sum(toFloat64(relevance)), NULL),
                   any(model_version)
            FROM {{db}}.scores FINAL
            WHERE {where} AND model_version IN {chosen}
            GROUP BY ticker, bucket
            ORDER BY ticker, bucket
        """  # noqa: S608
    _, rows = reader.query(sql, params, READ_ONLY)
    frame = typed(pd.DataFrame(rows, columns=SERIES_COLUMNS), SERIES_SCHEMA)
    return filled(frame, names, start, end, step) if fill else frame


def typed(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """Give a frame's columns the schema's dtypes, whether it has rows or not."""
    for column, dtype in schema.items():
        if dtype == TIME:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(TIME)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def buckets(start: Moment, end: Moment, freq: str) -> pd.DatetimeIndex:
    """Return the starts of the buckets of width ``freq`` that overlap [start, end)."""
    start, end = _range(start, end)
    return _buckets(start, end, parse_freq(freq).minutes)


def _buckets(start: datetime, end: datetime, step: int) -> pd.DatetimeIndex:
    # toStartOfInterval(t, INTERVAL n MINUTE) counts n-minute steps from the Unix epoch, as
    # Timestamp.floor does: the same bucket starts as the queries give.
    width = pd.Timedelta(minutes=step)
    first = pd.Timestamp(start).floor(width)
    index = pd.date_range(first, end, freq=width, inclusive="left", name="bucket")
    return pd.DatetimeIndex(index.astype(TIME), name="bucket")


def filled(
    frame: pd.DataFrame, tickers: Sequence[str], start: datetime, end: datetime, step: int
) -> pd.DataFrame:
    """Return the series with every (ticker, bucket) of the range: 0 documents, NaN scores."""
    grid = pd.MultiIndex.from_product(
        [sorted(set(tickers)), _buckets(start, end, step)], names=["ticker", "bucket"]
    )
    full = frame.set_index(["ticker", "bucket"]).reindex(grid).reset_index()
    full["documents"] = full["documents"].fillna(0)
    models = frame["model_version"].dropna().unique()
    # One model per series, so the empty buckets belong to it too.
    full["model_version"] = models[0] if len(models) else np.nan
    return typed(full[SERIES_COLUMNS], SERIES_SCHEMA)


def wide(
    frame: pd.DataFrame, value: str = "mean_score", tickers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Return one column per ticker of ``value``, indexed by bucket (a UTC DatetimeIndex).

    ``tickers`` gives the columns and their order (a ticker without rows is a column of NaN,
    or of 0 documents); default: the frame's tickers. ``attrs["model_version"]`` keeps the
    series' model.
    """
    if value not in ("documents", "mean_score", "negative_share", "weighted_score"):
        msg = (
            f"wide frames of {value!r}: use documents, mean_score, negative_share or weighted_score"
        )
        raise ConfigError(msg)
    table = frame.pivot(index="bucket", columns="ticker", values=value)
    if tickers is not None:
        table = table.reindex(columns=list(tickers))
    table.index = pd.DatetimeIndex(table.index.astype(TIME), name="bucket")
    table.columns = pd.Index([str(c) for c in table.columns], name="ticker")
    table = table.fillna(0).astype("int64") if value == "documents" else table.astype("float64")
    models = frame["model_version"].dropna().unique()
    table.attrs["model_version"] = str(models[0]) if len(models) else None
    return table


DOCUMENT_SCHEMA: dict[str, Any] = {
    "published_at": TIME,
    "doc_id": TEXT,
    "ticker": TEXT,
    "source": TEXT,
    "kind": TEXT,
    "title": TEXT,
    "url": TEXT,
    "label": TEXT,
    "score": "float64",
    "event_type": TEXT,
    "event_prob": "float64",
    "relevance": "float64",
    "dup_of": TEXT,
    "model_version": TEXT,
    "scored_at": TIME,
    "ingested_at": TIME,
}
DOCUMENT_COLUMNS = list(DOCUMENT_SCHEMA)


def documents(
    reader: Reader,
    ticker: str,
    start: Moment,
    end: Moment,
    as_of: Moment | None = None,
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
    return typed(pd.DataFrame(rows, columns=DOCUMENT_COLUMNS), DOCUMENT_SCHEMA)


ALERT_SCHEMA: dict[str, Any] = {
    "fired_at": TIME,
    "alert_id": TEXT,
    "ticker": TEXT,
    "rule": TEXT,
    "severity": TEXT,
    "state": TEXT,
    "value": "float64",
    "threshold": "float64",
    "documents": "int64",
    "window_start": TIME,
    "window_end": TIME,
    "explanation": TEXT,
}
ALERT_COLUMNS = list(ALERT_SCHEMA)
AlertTime = Literal["fired_at", "window_end"]


def alerts(
    reader: Reader,
    start: Moment,
    end: Moment,
    tickers: Sequence[str] | str | None = None,
    state: str | None = None,
    by: AlertTime = "fired_at",
) -> pd.DataFrame:
    """Return the alert states (firing, resolved) in a range, oldest first.

    Args:
        by: the time the range applies to: ``fired_at`` (when surveil raised it, processing
            time) or ``window_end`` (the event time its window closed: what a chart of a
            series draws, and what a replay or backfill of old documents has in the past).
    """
    if by not in ("fired_at", "window_end"):
        msg = f"alerts by {by!r}: use fired_at or window_end"
        raise ConfigError(msg)
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
        WHERE {by} >= {{start:DateTime64(3, 'UTC')}} AND {by} < {{end:DateTime64(3, 'UTC')}}
        {where}
        ORDER BY {by}, alert_id, state
    """  # noqa: S608 - the column is one of two names; values are bound parameters
    _, rows = reader.query(sql, params, READ_ONLY)
    return typed(pd.DataFrame(rows, columns=ALERT_COLUMNS), ALERT_SCHEMA)
