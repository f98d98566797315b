"""Draw a ticker's sentiment series and alerts as a PNG, without a display.

The figure is built on matplotlib's Agg canvas directly (no pyplot), so nothing global is
touched, no window can open, and nothing needs closing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from infra.errors import ConfigError
from surveil.quant.times import freq_name, parse_freq

FIRING = "#c62828"
RESOLVED = "#2e7d32"
MEAN = "#1f77b4"
WEIGHTED = "#ff7f0e"
# Where every relevance is equal the two lines coincide: a wide solid line under a thin
# dashed one with hollow markers keeps both visible.
SCORE_LINES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("mean_score", "mean score", dict(color=MEAN, linewidth=2.4, marker="o", ms=5, zorder=2)),
    (
        "weighted_score",
        "relevance-weighted score",
        dict(
            color=WEIGHTED,
            linewidth=1.2,
            linestyle="--",
            marker="D",
            ms=6,
            mfc="none",
            mew=1.2,
            zorder=3,
        ),
    ),
)
# The y axis never shows less than this span of scores: a flat series stays readable as flat.
MIN_SPAN = 0.2
# Tick labels per level of ConciseDateFormatter (years, months, days, hours, minutes,
# seconds): every one carries the year, so a chart of an old range says which year it is.
TICK_FORMATS = ["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d\n%H:%M", "%Y-%m-%d\n%H:%M", "%H:%M:%S"]


class ChartOptions(TypedDict, total=False):
    """The keyword options of `sentiment_figure`, for the functions that pass them on."""

    start: datetime | None
    end: datetime | None
    freq: str | None
    tz: str | tzinfo


def plot_sentiment(
    series: pd.DataFrame,
    alerts: pd.DataFrame,
    ticker: str,
    out: Path,
    **options: Unpack[ChartOptions],
) -> Path:
    """Write the sentiment chart of one ticker to ``out`` (PNG) and return the path.

    Args: those of `sentiment_figure`, and ``out``, the PNG to write (its folder is created).
    """
    fig = sentiment_figure(series, alerts, ticker, **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out


def sentiment_figure(
    series: pd.DataFrame,
    alerts: pd.DataFrame,
    ticker: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    freq: str | None = None,
    tz: str | tzinfo = "UTC",
) -> Figure:
    """Return the sentiment chart of one ticker.

    Top panel: mean score (solid, dots) and relevance-weighted score (dashed, hollow
    diamonds) per bucket, scaled to the data within [-1, 1] and broken at buckets without
    documents, with alert markers (firing in red, resolved in green) at the event time their
    window closed. Bottom panel: documents per bucket. An empty series gives a figure that
    says so.

    Args:
        series: `Quant.sentiment` rows (ticker, bucket, documents, mean_score, weighted_score);
            rows of other tickers are ignored.
        alerts: `Quant.alerts` rows (ticker, state, rule, window_end), best selected with
            ``by="window_end"``; those of other tickers or outside the range are not drawn.
        ticker: the ticker drawn.
        start: start of the range shown (default: the first bucket).
        end: end of the range shown (default: the last bucket plus one bucket).
        freq: the bucket width, e.g. ``1h``, for the title, bar widths and line breaks.
        tz: the time zone of the time axis and title (buckets stay those of the query).

    Raises:
        ConfigError: ``tz`` names no known time zone.
    """
    zone = _zone(tz)
    rows = series[series["ticker"] == ticker].sort_values("bucket") if len(series) else series
    rows = rows[rows["documents"] > 0] if len(rows) else rows
    step = _step(freq, rows)
    start, end = _shown(rows, step, start, end)
    total = int(rows["documents"].sum()) if len(rows) else 0

    fig = Figure(figsize=(11, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    score_ax, count_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    shown = f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {end.astimezone(zone):%Y-%m-%d %H:%M}"
    width = freq or freq_name(int(step.total_seconds() // 60))
    fig.suptitle(
        f"{ticker} sentiment, {shown} {_zone_name(zone)}, {width} buckets, {total} documents",
        fontsize=11,
    )
    _score_panel(score_ax, rows, step)
    _count_panel(count_ax, rows, step)
    _alert_markers(score_ax, alerts, ticker, start, end)
    if score_ax.get_legend_handles_labels()[0]:
        score_ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _time_axis(count_ax, start, end, zone)
    return fig


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"unknown time zone {tz!r}: use an IANA name such as UTC or America/New_York"
        raise ConfigError(msg) from exc


def _zone_name(zone: tzinfo) -> str:
    return "UTC" if zone is UTC else str(getattr(zone, "key", zone))


def _step(freq: str | None, rows: pd.DataFrame) -> timedelta:
    if freq is not None:
        return timedelta(minutes=parse_freq(freq).minutes)
    if len(rows) > 1:
        smallest = rows["bucket"].diff().dropna().min()
        return timedelta(seconds=float(smallest.total_seconds()))
    return timedelta(hours=1)


def _shown(
    rows: pd.DataFrame, step: timedelta, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """Return the range shown: the one asked, else the rows' buckets, else the last day."""
    if len(rows):
        start = start or rows["bucket"].iloc[0].to_pydatetime()
        end = end or rows["bucket"].iloc[-1].to_pydatetime() + step
    now = datetime.now(UTC)
    return start or now - timedelta(days=1), end or now


def _every_bucket(rows: pd.DataFrame, step: timedelta) -> pd.DataFrame:
    """Return the rows with one row per bucket from the first to the last: NaN where empty."""
    buckets = pd.to_datetime(rows["bucket"], utc=True)
    grid = pd.date_range(buckets.iloc[0], buckets.iloc[-1], freq=pd.Timedelta(step))
    # The union keeps a bucket off the grid too (a series of another width than freq).
    index = grid.union(pd.DatetimeIndex(buckets))
    full = rows.assign(bucket=buckets).set_index("bucket").reindex(index)
    return full.rename_axis("bucket").reset_index()


def _times(values: pd.Series) -> NDArray[np.float64]:
    """Return matplotlib date numbers (days since its epoch, UTC) of timestamps."""
    stamps = [ts.to_pydatetime() for ts in pd.to_datetime(values, utc=True)]
    # matplotlib.dates ships without type hints: these calls are its only untyped ones.
    return np.asarray(mdates.date2num(stamps), dtype=np.float64)  # type: ignore[no-untyped-call]


def _score_panel(ax: Axes, rows: pd.DataFrame, step: timedelta) -> None:
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_ylabel("score")
    ax.grid(True, alpha=0.3)
    ax.set_ylim(*score_limits(rows))
    if not len(rows):
        ax.text(
            0.5,
            0.5,
            "no documents in range",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color="0.4",
            bbox={"facecolor": "white", "edgecolor": "0.8"},
        )
        return
    lines = _every_bucket(rows, step)
    # Each point sits in the middle of its bucket, over its bar below.
    times = _times(lines["bucket"] + pd.Timedelta(step) / 2)
    for column, label, style in SCORE_LINES:
        ax.plot(times, lines[column].astype("float64"), label=label, **style)


def score_limits(rows: pd.DataFrame) -> tuple[float, float]:
    """Return y limits around the scores drawn, with a margin, within [-1.05, 1.05]."""
    if not len(rows):
        return -1.05, 1.05
    values = pd.concat([rows["mean_score"], rows["weighted_score"]]).astype("float64")
    values = values[np.isfinite(values)]
    if not len(values):
        return -1.05, 1.05
    low, high = float(values.min()), float(values.max())
    if high - low < MIN_SPAN:
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    margin = 0.1 * (high - low)
    return max(-1.05, low - margin), min(1.05, high + margin)


def _count_panel(ax: Axes, rows: pd.DataFrame, step: timedelta) -> None:
    ax.set_ylabel("documents")
    ax.grid(True, axis="y", alpha=0.3)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(rows):
        # Bars start at their bucket and span it, as the buckets do.
        ax.bar(
            _times(rows["bucket"]),
            rows["documents"],
            width=step / timedelta(days=1),
            align="edge",
            color="0.45",
        )
        ax.set_ylim(0, max(1, int(rows["documents"].max())) * 1.05)
    else:
        ax.set_ylim(0, 1)


def _alert_markers(
    ax: Axes, alerts: pd.DataFrame, ticker: str, start: datetime, end: datetime
) -> None:
    """Mark alert states at their window's end (event time), at the top of the panel."""
    if not len(alerts):
        return
    at = pd.to_datetime(alerts["window_end"], utc=True)
    mine = alerts[(alerts["ticker"] == ticker) & (at >= start) & (at <= end)]
    # x in data, y in axes: markers stay at the top whatever the scores' scale.
    top = ax.get_xaxis_transform()
    for state, color, marker in (("firing", FIRING, "v"), ("resolved", RESOLVED, "^")):
        rows = mine[mine["state"] == state]
        if not len(rows):
            continue
        times = _times(rows["window_end"])
        for x, rule in zip(times, rows["rule"], strict=True):
            ax.axvline(float(x), color=color, linestyle=":", linewidth=1)
            ax.annotate(
                rule if state == "firing" else f"{rule} resolved",
                (float(x), 1.0),
                xycoords=top,
                xytext=(3, -10),
                textcoords="offset points",
                rotation=90,
                va="top",
                fontsize=7,
                color=color,
            )
        ax.scatter(
            times,
            [1.0] * len(times),
            transform=top,
            marker=marker,
            s=60,
            color=color,
            zorder=4,
            label=f"alert {state}",
            clip_on=False,
        )


def _time_axis(ax: Axes, start: datetime, end: datetime, zone: tzinfo) -> None:
    locator = mdates.AutoDateLocator(tz=zone, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, tz=zone, formats=TICK_FORMATS, zero_formats=TICK_FORMATS, show_offset=False
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    low, high = _times(pd.Series([start, end]))
    ax.set_xlim(float(low), float(high))
    ax.set_xlabel(f"time ({_zone_name(zone)})")
