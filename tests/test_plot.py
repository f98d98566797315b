"""The sentiment chart: scaled to its data, two lines told apart, dates with their year,
whole documents, breaks at empty buckets, alerts at event time, any time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from infra.errors import ConfigError
from surveil.quant.plot import plot_sentiment, sentiment_figure

T0 = datetime(2024, 12, 31, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
PNG = b"\x89PNG\r\n\x1a\n"


def series(means: list[float | None], ticker: str = "MSFT", documents: int = 1) -> pd.DataFrame:
    """Hourly buckets from T0; None is an hour without documents (no row, as a query gives)."""
    rows = [
        (ticker, T0 + i * HOUR, documents, m, -0.2 if m is None else m * 0.9)
        for i, m in enumerate(means)
        if m is not None
    ]
    frame = pd.DataFrame(
        rows, columns=["ticker", "bucket", "documents", "mean_score", "weighted_score"]
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


NO_ALERTS = pd.DataFrame(columns=["ticker", "state", "rule", "window_end", "fired_at"])


def figure(frame: pd.DataFrame, alerts: pd.DataFrame = NO_ALERTS, **kw: object) -> Figure:
    hours = 8
    fig = sentiment_figure(
        frame,
        alerts,
        "MSFT",
        start=T0,
        end=T0 + hours * HOUR,
        freq="1h",
        **kw,  # type: ignore[arg-type]
    )
    fig.canvas.draw()  # tick labels exist once drawn
    return fig


def panels(fig: Figure) -> tuple[Axes, Axes]:
    score, count = fig.axes
    return score, count


def test_the_score_axis_fits_the_data_within_minus_one_to_one() -> None:
    low, high = panels(figure(series([-0.6, -0.55, -0.62, -0.5])))[0].get_ylim()
    assert -0.7 < low < -0.62 and -0.45 < high < -0.4  # all data shown, not all of [-1, 1]
    low, high = panels(figure(series([1.0, 0.9, -1.0])))[0].get_ylim()
    assert -1.05 <= low < -0.99 and 0.99 < high <= 1.05


def test_mean_and_weighted_lines_differ_in_style_and_are_in_the_legend() -> None:
    score, _ = panels(figure(series([0.1, 0.2, 0.15])))
    mean, weighted = score.get_lines()[1:]  # the first is the zero line
    assert mean.get_linestyle() != weighted.get_linestyle()
    assert mean.get_marker() != weighted.get_marker()
    # Where the two coincide, the wider mean line shows around the weighted one drawn over
    # it, and the weighted markers are hollow, so the mean's show through them.
    assert mean.get_linewidth() > 1.5 * weighted.get_linewidth()
    assert weighted.get_zorder() > mean.get_zorder()
    assert weighted.get_markerfacecolor() == "none"
    legend = score.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["mean score", "relevance-weighted score"]


@pytest.mark.parametrize("hours", [3, 8, 60])
def test_every_date_on_the_axis_carries_its_year(hours: int) -> None:
    frame = series([0.1] * hours)
    fig = sentiment_figure(frame, NO_ALERTS, "MSFT", start=T0, end=T0 + hours * HOUR, freq="1h")
    fig.canvas.draw()
    labels = [t.get_text() for t in panels(fig)[1].get_xticklabels() if t.get_text()]
    assert labels and all(("2024" in x or "2025" in x) for x in labels), labels


def test_document_counts_have_whole_ticks() -> None:
    _, count = panels(figure(series([0.1, 0.2, None, 0.3])))
    ticks = [t for t in count.get_yticks() if 0 <= t <= count.get_ylim()[1]]
    assert ticks == [0.0, 1.0]


def test_lines_break_at_every_empty_bucket() -> None:
    score, _ = panels(figure(series([0.1, None, 0.3, 0.2, None, None, 0.4])))
    for line in score.get_lines()[1:]:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert list(np.isnan(y)) == [False, True, False, False, True, True, False]


def test_alerts_are_drawn_at_their_window_end_even_when_fired_much_later() -> None:
    replayed = datetime.now(UTC)  # a backfill of 2024's documents fires its alerts now
    alerts = pd.DataFrame(
        [
            ("MSFT", "firing", "mean_below", T0 + 2 * HOUR, replayed),
            ("MSFT", "resolved", "mean_below", T0 + 5 * HOUR, replayed),
            ("AAPL", "firing", "mean_below", T0 + 3 * HOUR, replayed),  # another ticker
            ("MSFT", "firing", "mean_below", T0 + 30 * HOUR, replayed),  # outside the range
        ],
        columns=["ticker", "state", "rule", "window_end", "fired_at"],
    )
    score, _ = panels(figure(series([0.1, 0.2, 0.3]), alerts))
    marks = {c.get_label(): np.asarray(c.get_offsets(), dtype=float) for c in score.collections}
    # matplotlib's date numbers count days since 1970-01-01 UTC.
    at = {label: pd.Timestamp(xy[0, 0] * 86_400, unit="s", tz="UTC") for label, xy in marks.items()}
    assert at == {"alert firing": T0 + 2 * HOUR, "alert resolved": T0 + 5 * HOUR}


def test_the_time_axis_speaks_the_zone_asked_for(tmp_path: Path) -> None:
    frame = series([0.1] * 8)
    utc = figure(frame)
    paris = figure(frame, tz="Europe/Paris")
    assert panels(utc)[1].get_xlabel() == "time (UTC)"
    assert panels(paris)[1].get_xlabel() == "time (Europe/Paris)"
    first = [panels(f)[1].get_xticklabels()[0].get_text() for f in (utc, paris)]
    assert first == ["2024-12-31\n20:00", "2024-12-31\n21:00"]  # Paris is UTC+1 in winter
    assert "21:00 to 2025-01-01 05:00 Europe/Paris" in paris.get_suptitle()
    with pytest.raises(ConfigError, match="unknown time zone"):
        figure(frame, tz="Mars/Olympus")
    out = plot_sentiment(frame, NO_ALERTS, "MSFT", tmp_path / "p" / "m.png", tz="Asia/Tokyo")
    assert out.read_bytes().startswith(PNG)
