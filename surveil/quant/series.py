"""Sentiment series: one row per (ticker, bucket), long or wide, from the rollup or the scores.

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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from infra.errors import ConfigError
from surveil.quant.base import READ_ONLY, Reader
from surveil.quant.frames import TEXT, TIME, typed
from surveil.quant.times import DEFAULT_FREQ, Moment, bucket_starts, parse_freq, span, utc

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
WIDE_VALUES = ("documents", "mean_score", "negative_share", "weighted_score")

_BUCKET = "toStartOfInterval({col}, INTERVAL {step} MINUTE, 'UTC')"
# The range filters the per-minute rows before they are grouped: the query reads the
# granules of its tickers, model and range, never the whole rollup.
_ROLLUP_WHERE = """
    ticker IN {tickers:Array(String)}
    AND minute >= toStartOfMinute({start:DateTime64(3, 'UTC')})
    AND minute < {end:DateTime64(3, 'UTC')}"""
_ROLLUP_MODEL = f"""(SELECT model_version FROM {{db}}.sentiment_1m_by_model WHERE {_ROLLUP_WHERE}
    GROUP BY model_version ORDER BY max(last_scored) DESC, model_version DESC LIMIT 1)"""  # noqa: S608 - fixed SQL; values are bound parameters
_ROLLUP = """
    SELECT ticker, {bucket} AS bucket,
           sum(documents) AS n, sum(score_sum) / n, sum(negatives) / n,
           if(sum(relevance_sum) > 0, sum(weighted_sum) / sum(relevance_sum), NULL),
           any(model_version)
    FROM {{db}}.sentiment_1m_by_model
    WHERE {where} AND model_version IN {chosen}
    GROUP BY ticker, bucket
    ORDER BY ticker, bucket"""
_KNOWN_WHERE = """
    ticker IN {tickers:Array(String)}
    AND published_at >= {start:DateTime64(3, 'UTC')}
    AND published_at < {end:DateTime64(3, 'UTC')}
    AND published_at <= {as_of:DateTime64(3, 'UTC')}
    AND scored_at <= {as_of:DateTime64(3, 'UTC')}
    AND ingested_at <= {as_of:DateTime64(3, 'UTC')}"""
_KNOWN_MODEL = f"""(SELECT model_version FROM {{db}}.scores FINAL WHERE {_KNOWN_WHERE}
    GROUP BY model_version ORDER BY max(scored_at) DESC, model_version DESC LIMIT 1)"""  # noqa: S608
_KNOWN = """
    SELECT ticker, {bucket} AS bucket,
           count() AS n, sum(toFloat64(score)) / n, countIf(label = 'negative') / n,
           if(sum(relevance) > 0,
              sum(toFloat64(score) * relevance) / sum(toFloat64(relevance)), NULL),
           any(model_version)
    FROM {{db}}.scores FINAL
    WHERE {where} AND model_version IN {chosen}
    GROUP BY ticker, bucket
    ORDER BY ticker, bucket"""


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
    wide: bool = False,
    value: str = "mean_score",
) -> pd.DataFrame:
    """Return the sentiment series of tickers: one row per (ticker, bucket) with documents.

    Columns: ticker, bucket (its start, UTC), documents, mean_score, negative_share,
    weighted_score (mean score weighted by each ticker's relevance to its document) and
    model_version (the one model the series comes from).

    Args:
        as_of: drop rows scored or ingested after it (point in time).
        model: the model version to read; default: the one that scored most recently among
            these tickers' rows in the range (a series never mixes two models' scales).
        fill: give every bucket of the range for every ticker asked, those without documents
            with 0 documents and NaN scores; default: only buckets with documents.
        wide: one column of ``value`` per ticker, indexed by bucket (see `widen`).
        value: the column a wide frame holds (mean_score, weighted_score, documents, ...).
    """
    names = [tickers] if isinstance(tickers, str) else list(tickers)
    start, end = span(start, end)
    step = parse_freq(freq).minutes
    params: dict[str, Any] = {"tickers": names, "start": start, "end": end}
    if model is not None:
        params["model"] = model
    if as_of is not None:
        params["as_of"] = utc(as_of)
    sql = _series_sql(step, model is not None, as_of is not None)
    _, rows = reader.query(sql, params, READ_ONLY)
    frame = typed(pd.DataFrame(rows, columns=SERIES_COLUMNS), SERIES_SCHEMA)
    if fill:
        frame = filled(frame, names, start, end, step)
    return widen(frame, value, names) if wide else frame


def _series_sql(step: int, model: bool, known: bool) -> str:
    """Return the series query: from the rollup, or (``known``) the scores known at as_of."""
    chosen = "({model:String})" if model else (_KNOWN_MODEL if known else _ROLLUP_MODEL)
    col = "published_at" if known else "minute"
    # The interval is an int we computed; values are bound parameters.
    return (_KNOWN if known else _ROLLUP).format(
        bucket=_BUCKET.format(col=col, step=step),
        where=_KNOWN_WHERE if known else _ROLLUP_WHERE,
        chosen=chosen,
    )


def filled(
    frame: pd.DataFrame, tickers: Sequence[str], start: datetime, end: datetime, step: int
) -> pd.DataFrame:
    """Return the series with every (ticker, bucket) of the range: 0 documents, NaN scores."""
    grid = pd.MultiIndex.from_product(
        [sorted(set(tickers)), bucket_starts(start, end, step)], names=["ticker", "bucket"]
    )
    full = frame.set_index(["ticker", "bucket"]).reindex(grid).reset_index()
    full["documents"] = full["documents"].fillna(0)
    models = frame["model_version"].dropna().unique()
    # One model per series, so the empty buckets belong to it too.
    full["model_version"] = models[0] if len(models) else np.nan
    return typed(full[SERIES_COLUMNS], SERIES_SCHEMA)


def widen(
    frame: pd.DataFrame, value: str = "mean_score", tickers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Return one column per ticker of ``value``, indexed by bucket (a UTC DatetimeIndex).

    ``tickers`` gives the columns and their order (a ticker without rows is a column of NaN,
    or of 0 documents); default: the frame's tickers. ``attrs["model_version"]`` keeps the
    series' model.

    Raises:
        ConfigError: ``value`` is not one of `WIDE_VALUES`.
    """
    if value not in WIDE_VALUES:
        msg = f"wide frames of {value!r}: use {', '.join(WIDE_VALUES[:-1])} or {WIDE_VALUES[-1]}"
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
