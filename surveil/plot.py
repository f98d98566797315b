"""Draw a ticker's sentiment series and alerts as a PNG, without a display.

The figure is built on matplotlib's Agg canvas directly (no pyplot), so nothing global is
touched, no window can open, and nothing needs closing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

FIRING = "#c62828"
RESOLVED = "#2e7d32"
MEAN = "#1f77b4"
WEIGHTED = "#ff7f0e"


def plot_sentiment(
    series: pd.DataFrame,
    alerts: pd.DataFrame,
    ticker: str,
    out: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    freq: str | None = None,
) -> Path:
    """Write the sentiment chart of one ticker to ``out`` (PNG) and return the path.

    Top panel: mean and relevance-weighted score per bucket on [-1, 1] with alert markers
    (firing in red, resolved in green, at the event time their window closed). Bottom panel:
    documents per bucket. An empty series gives a figure that says so.

    Args:
        series: `Quant.sentiment` rows (ticker, bucket, documents, mean_score, weighted_score);
            rows of other tickers are ignored.
        alerts: `Quant.alerts` rows (state, rule, window_end, fired_at); may be empty.
        ticker: the ticker drawn.
        out: the PNG to write; its folder is created.
        start: start of the range shown (default: the first bucket).
        end: end of the range shown (default: the last bucket plus one bucket).
        freq: the bucket width, e.g. ``1h``, for the title and bar widths.
    """
    rows = series[series["ticker"] == ticker].sort_values("bucket") if len(series) else series
    step = _step(freq, rows)
    if len(rows):
        start = start or rows["bucket"].iloc[0].to_pydatetime()
        end = end or rows["bucket"].iloc[-1].to_pydatetime() + step
    now = datetime.now(UTC)
    start, end = start or now - timedelta(days=1), end or now
    total = int(rows["documents"].sum()) if len(rows) else 0

    fig = Figure(figsize=(11, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    score_ax, count_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    fig.suptitle(
        f"{ticker} sentiment, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
        f"{freq or _label(step)} buckets, {total} documents",
        fontsize=11,
    )
    _score_panel(score_ax, rows, step)
    _count_panel(count_ax, rows, step)
    if not len(rows):
        score_ax.text(
            0.5,
            0.5,
            "no documents in range",
            transform=score_ax.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color="0.4",
            bbox={"facecolor": "white", "edgecolor": "0.8"},
        )
    _alert_markers(score_ax, alerts, ticker)
    _time_axis(count_ax, start, end)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out


def _step(freq: str | None, rows: pd.DataFrame) -> timedelta:
    if freq is not None:
        from infra.quant import parse_freq  # noqa: PLC0415 - only for a given width

        return timedelta(minutes=parse_freq(freq).minutes)
    if len(rows) > 1:
        smallest = rows["bucket"].diff().dropna().min()
        return timedelta(seconds=float(smallest.total_seconds()))
    return timedelta(hours=1)


def _label(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min"


def _with_gaps(rows: pd.DataFrame, step: timedelta) -> pd.DataFrame:
    """Insert an empty row after each bucket followed by a gap, so lines break there."""
    later = rows["bucket"].shift(-1)
    gaps = rows.loc[(later - rows["bucket"]) > pd.Timedelta(step), ["bucket"]]
    breaks = pd.DataFrame({"bucket": gaps["bucket"] + pd.Timedelta(step)})
    return pd.concat([rows, breaks]).sort_values("bucket") if len(breaks) else rows


def _times(values: pd.Series) -> NDArray[np.float64]:
    """Return matplotlib date numbers (days since its epoch, UTC) of timestamps."""
    stamps = [ts.to_pydatetime() for ts in pd.to_datetime(values, utc=True)]
    # matplotlib.dates ships without type hints: these calls are its only untyped ones.
    return np.asarray(mdates.date2num(stamps), dtype=np.float64)  # type: ignore[no-untyped-call]


def _score_panel(ax: Axes, rows: pd.DataFrame, step: timedelta) -> None:
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("score (-1 to 1)")
    ax.grid(True, alpha=0.3)
    if len(rows):
        lines = _with_gaps(rows, step)
        # Each point sits in the middle of its bucket, over its bar below.
        times = _times(lines["bucket"] + pd.Timedelta(step) / 2)
        ax.plot(times, lines["mean_score"], color=MEAN, marker="o", ms=4, label="mean score")
        ax.plot(
            times,
            lines["weighted_score"],
            color=WEIGHTED,
            linestyle="--",
            marker=".",
            ms=4,
            label="relevance-weighted",
        )


def _count_panel(ax: Axes, rows: pd.DataFrame, step: timedelta) -> None:
    ax.set_ylabel("documents")
    ax.grid(True, axis="y", alpha=0.3)
    if len(rows):
        # Bars start at their bucket and span it, as the buckets do.
        ax.bar(
            _times(rows["bucket"]),
            rows["documents"],
            width=step / timedelta(days=1),
            align="edge",
            color="0.45",
        )
    else:
        ax.set_ylim(0, 1)


def _alert_markers(ax: Axes, alerts: pd.DataFrame, ticker: str) -> None:
    mine = alerts[alerts["ticker"] == ticker] if len(alerts) else alerts
    for state, color, marker in (("firing", FIRING, "v"), ("resolved", RESOLVED, "^")):
        rows = mine[mine["state"] == state] if len(mine) else mine
        if not len(rows):
            continue
        times = _times(rows["window_end"])
        for at, rule in zip(times, rows["rule"], strict=True):
            ax.axvline(float(at), color=color, linestyle=":", linewidth=1)
            ax.annotate(
                rule if state == "firing" else f"{rule} resolved",
                (float(at), 1.0),
                xytext=(3, -4),
                textcoords="offset points",
                rotation=90,
                va="top",
                fontsize=7,
                color=color,
            )
        ax.scatter(
            times,
            [1.0] * len(times),
            marker=marker,
            s=60,
            color=color,
            zorder=3,
            label=f"alert {state}",
            clip_on=False,
        )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)


def _time_axis(ax: Axes, start: datetime, end: datetime) -> None:
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    low, high = _times(pd.Series([start, end]))
    ax.set_xlim(float(low), float(high))
    ax.set_xlabel("time (UTC)")
