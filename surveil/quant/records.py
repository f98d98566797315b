"""A ticker's scored documents and the alert states of a range, as DataFrames, oldest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from infra.errors import ConfigError
from surveil.quant.base import READ_ONLY, Reader
from surveil.quant.frames import TEXT, TIME, typed
from surveil.quant.times import Moment, span, utc

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
_KNOWN = (
    "AND s.scored_at <= {as_of:DateTime64(3, 'UTC')} "
    "AND s.ingested_at <= {as_of:DateTime64(3, 'UTC')} "
    "AND s.published_at <= {as_of:DateTime64(3, 'UTC')}"
)


def documents(
    reader: Reader,
    ticker: str,
    start: Moment,
    end: Moment,
    as_of: Moment | None = None,
    limit: int = 10_000,
) -> pd.DataFrame:
    """Return a ticker's scored documents in a range, oldest first, with their scores.

    Args:
        as_of: drop rows scored or ingested after it (point in time).
        limit: the most documents returned.
    """
    start, end = span(start, end)
    params: dict[str, Any] = {"ticker": ticker, "start": start, "end": end, "limit": limit}
    if as_of is not None:
        params["as_of"] = utc(as_of)
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
          {_KNOWN if as_of is not None else ""}
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
    start, end = span(start, end)
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
