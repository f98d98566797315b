"""Made-up scores for the store benchmark: Zipf-like tickers over weekdays and weekends.

`scored_rows` builds them in Python, as the classify agent hands them over; `generate` makes
millions inside ClickHouse with the same shape, one INSERT ... SELECT per day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from infra.db import Warehouse
from streams.records import Kind, Label, Scored
from streams.store import SCORE_COLUMNS

START = datetime(2026, 8, 3, tzinfo=UTC)  # a Monday: day d is a weekday when d % 7 < 5
SESSION = (13 * 3600 + 1800, 20 * 3600)  # US regular session in UTC (summer time), seconds
IN_SESSION = 0.7  # share of a weekday's documents published during the session
WEEKEND_WEIGHT = 0.3  # a weekend day's volume against a weekday's
KINDS: tuple[tuple[Kind, str, float], ...] = (
    ("news", "rss", 0.5),
    ("social", "stocktwits", 0.25),
    ("social", "reddit", 0.15),
    ("filing", "edgar", 0.1),
)
EVENTS = ("none",) * 7 + ("earnings", "analyst_update", "company_product_news")
MODEL = "small-20261123-094b2ff6"


def symbols(count: int, seed: int) -> list[str]:
    """Return ``count`` distinct made-up ticker symbols of one to five letters, by popularity."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    found: dict[str, None] = {}
    while len(found) < count:
        size = rng.choice((1, 2, 3, 3, 4, 4, 4, 5))
        found.setdefault("".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=size)))
    return list(found)


def day_weights(days: int) -> list[float]:
    """Return each day's share of the volume: weekdays 1, weekends ``WEEKEND_WEIGHT``."""
    weights = [1.0 if d % 7 < 5 else WEEKEND_WEIGHT for d in range(days)]
    total = sum(weights)
    return [w / total for w in weights]


def moment(rng: random.Random, day: int) -> datetime:
    """Return a publication time on ``day`` (from START), most weekday ones in the session."""
    if day % 7 < 5 and rng.random() < IN_SESSION:
        second = rng.uniform(*SESSION)
    else:
        second = rng.uniform(0, 86_400)
    return START + timedelta(days=day, seconds=second)


def scored_rows(count: int, tickers: Sequence[str], days: int, seed: int) -> list[Scored]:
    """Return ``count`` realistic scores: Zipf-like ticker popularity, over ``days`` days.

    A fifth of the documents name two or three tickers, so (doc_id, ticker) pairs share ids.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    popularity = [1 / rank for rank in range(1, len(tickers) + 1)]
    weights = day_weights(days)
    rows: list[Scored] = []
    while len(rows) < count:
        day = rng.choices(range(days), weights)[0]
        published = moment(rng, day)
        kind, source, _ = rng.choices(KINDS, [k[2] for k in KINDS])[0]
        doc_id = f"{rng.getrandbits(128):032x}"
        names = rng.choices(tickers, popularity, k=rng.choices((1, 2, 3), (0.8, 0.15, 0.05))[0])
        for ticker in dict.fromkeys(names):
            a, b, c = rng.expovariate(1), rng.expovariate(1) * 1.5, rng.expovariate(1)
            p_neg, p_neu, p_pos = a / (a + b + c), b / (a + b + c), c / (a + b + c)
            label: Label = "negative" if p_neg >= max(p_neu, p_pos) else "neutral"
            if p_pos > max(p_neg, p_neu):
                label = "positive"
            fetched = published + timedelta(seconds=rng.uniform(1, 120))
            rows.append(
                Scored(
                    doc_id=doc_id,
                    ticker=ticker,
                    kind=kind,
                    source=source,
                    published_at=published,
                    fetched_at=fetched,
                    label=label,
                    p_negative=p_neg,
                    p_neutral=p_neu,
                    p_positive=p_pos,
                    score=max(-1.0, min(1.0, p_pos - p_neg)),
                    event_type=rng.choice(EVENTS),
                    event_prob=rng.random(),
                    relevance=rng.uniform(0.3, 1.0),
                    model_version=MODEL,
                    scored_at=fetched + timedelta(seconds=rng.uniform(0.05, 2)),
                )
            )
    # arrival order: a stream batch holds documents published about the same time
    return sorted(rows[:count], key=lambda r: r.published_at)


def _u(salt: int) -> str:
    """Return SQL for a uniform draw in [0, 1) from the row number, reproducible."""
    return f"(cityHash64(number, {salt}) / 18446744073709551616.0)"


GENERATE = f"""
INSERT INTO {{db}}.scores ({", ".join(SCORE_COLUMNS)})
SELECT doc_id, ticker, kind, source, published_at,
       published_at + toIntervalMillisecond(fetch_ms), label, p_neg, p_neu, p_pos,
       p_pos - p_neg, event_type, event_prob, relevance, '{MODEL}',
       published_at + toIntervalMillisecond(fetch_ms + score_ms)
FROM (
    SELECT
        lower(concat(hex(cityHash64(number, 0)), hex(cityHash64(number, 1)))) AS doc_id,
        {{tickers:Array(String)}}[toUInt32(least({{n:UInt32}},
            floor(exp({_u(2)} * log({{n:UInt32}} + 1)))))] AS ticker,
        multiIf({_u(3)} < 0.5, 'news', {_u(3)} < 0.9, 'social', 'filing') AS kind,
        multiIf({_u(3)} < 0.5, 'rss', {_u(3)} < 0.75, 'stocktwits', {_u(3)} < 0.9, 'reddit',
                'edgar') AS source,
        toDateTime64({{day:DateTime('UTC')}}, 3, 'UTC')
            + toIntervalMillisecond(toUInt64(1000 * if({{weekday:UInt8}} AND {_u(4)} < {IN_SESSION},
                {SESSION[0]} + {_u(5)} * {SESSION[1] - SESSION[0]}, {_u(5)} * 86400)))
            AS published_at,
        toUInt32(1000 + {_u(6)} * 119000) AS fetch_ms,
        toUInt32(50 + {_u(11)} * 1950) AS score_ms,
        -log({_u(7)} + 1e-12) AS a, -log({_u(8)} + 1e-12) * 1.5 AS b, -log({_u(9)} + 1e-12) AS c,
        toFloat32(a / (a + b + c)) AS p_neg, toFloat32(b / (a + b + c)) AS p_neu,
        toFloat32(c / (a + b + c)) AS p_pos,
        multiIf(p_neg >= greatest(p_neu, p_pos), 'negative', p_pos > p_neu, 'positive',
                'neutral') AS label,
        ['{"', '".join(EVENTS)}'][1 + cityHash64(number, 10) % {len(EVENTS)}] AS event_type,
        toFloat32({_u(12)}) AS event_prob,
        toFloat32(0.3 + 0.7 * {_u(13)}) AS relevance
    FROM numbers({{offset:UInt64}}, {{count:UInt64}})
)
"""  # noqa: S608 - constants of this module; values are bound parameters


def generate(wh: Warehouse, rows: int, tickers: Sequence[str], days: int) -> None:
    """Insert ``rows`` scores inside ClickHouse, one INSERT per day as they would arrive.

    Ticker ranks are log-uniform (P(rank k) ~ 1/k, Zipf with exponent 1).
    """
    offset = 0
    for day, weight in enumerate(day_weights(days)):
        count = rows - offset if day == days - 1 else round(rows * weight)
        params = {
            "tickers": list(tickers),
            "n": len(tickers),
            "day": START + timedelta(days=day),
            "weekday": int(day % 7 < 5),
            "offset": offset,
            "count": count,
        }
        wh.command(GENERATE, params)
        offset += count
