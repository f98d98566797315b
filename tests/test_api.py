"""`surveil.quant` on a real chDB folder: times as strings or dates, the same dtypes empty or
full, one default width, filled and wide series, alerts by event time, one model per series.

The data (UTC): AAPL scored by model m1 on 2026-03-02 (13:01 0.5, 13:03 -0.25, 15:10 0.75),
then by m2 (another scale) on 2026-03-02 13:20 (0.05); MSFT by m1 at 13:01 (0.25). An alert
on AAPL whose window closed on 2025-06-10, fired when a backfill replayed it, "now".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from infra.errors import ConfigError
from infra.settings import Settings
from streams.store import SCORE_COLUMNS, Store
from surveil.compose.runtime import open_warehouse
from surveil.quant import DEFAULT_FREQ, Quant, connect
from surveil.quant.series import SERIES_COLUMNS
from tests.records import alert

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
OLD = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def score_row(
    doc: str, ticker: str, minute: int, score: float, model: str, scored: int
) -> list[Any]:
    at = T0 + timedelta(minutes=minute)
    seen = T0 + timedelta(minutes=scored)
    label = "negative" if score < 0 else "positive"
    p_pos, p_neg = max(0.0, score), max(0.0, -score)
    return [doc, ticker, "news", "wire", at, at, label, p_neg, 1 - p_pos - p_neg, p_pos,
            score, "none", 0.0, 1.0, model, seen, seen]  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quant]:
    settings = Settings(_env_file=None, state_dir=tmp_path_factory.mktemp("api"))  # type: ignore[call-arg]
    warehouse = open_warehouse(settings)
    try:
        rows = [
            score_row("d1", "AAPL", 1, 0.5, "m1", 2),
            score_row("d2", "AAPL", 3, -0.25, "m1", 4),
            score_row("d3", "AAPL", 130, 0.75, "m1", 131),
            score_row("d1", "MSFT", 1, 0.25, "m1", 2),
            score_row("d9", "AAPL", 20, 0.05, "m2", 600),  # the model switched
        ]
        warehouse.insert("scores", rows, [*SCORE_COLUMNS, "ingested_at"])
        replayed = datetime.now(UTC)
        Store(warehouse).write_alerts(
            [alert(replayed, ticker="AAPL", window_start=OLD - timedelta(hours=1), window_end=OLD)]
        )
    finally:
        warehouse.close()
    quant = connect(settings)
    try:
        yield quant
    finally:
        quant.close()


def test_iso_strings_and_dates_are_utc_and_garbage_is_refused(db: Quant) -> None:
    aware = db.sentiment("AAPL", T0, T0 + timedelta(days=1), model="m1")
    assert db.sentiment("AAPL", "2026-03-02T13:00", "2026-03-03", model="m1").equals(aware)
    assert db.sentiment("AAPL", "2026-03-02T15:00+02:00", date(2026, 3, 3), model="m1").equals(
        aware
    )
    assert len(db.documents("AAPL", "2026-03-02", "2026-03-03T00:00Z")) == 4
    with pytest.raises(ConfigError, match="'yesterday' is not an ISO date"):
        db.sentiment("AAPL", "yesterday", T0)
    with pytest.raises(ConfigError, match="no time zone"):
        db.alerts(datetime(2026, 3, 2), T0)  # noqa: DTZ001 - a naive datetime stays refused


def test_empty_frames_have_the_columns_and_dtypes_of_full_ones(db: Quant) -> None:
    empty, full = ("2024-01-01", "2024-01-02"), ("2026-03-02", "2026-03-03")
    pairs = [
        (db.sentiment("AAPL", *empty), db.sentiment("AAPL", *full)),
        (db.documents("AAPL", *empty), db.documents("AAPL", *full)),
        (db.alerts(*empty), db.alerts("2025-06-10", "2025-06-11", by="window_end")),
    ]
    for none, some in pairs:
        assert none.empty and not some.empty
        assert none.dtypes.to_dict() == some.dtypes.to_dict()
    assert str(pairs[0][1]["bucket"].dtype) == "datetime64[ns, UTC]"


def test_one_default_width_an_hour(db: Quant) -> None:
    assert DEFAULT_FREQ == "1h"
    frame = db.sentiment("AAPL", "2026-03-02", "2026-03-03")
    assert frame["bucket"].dt.minute.eq(0).all()
    assert frame.equals(db.sentiment("AAPL", "2026-03-02", "2026-03-03", freq="1h"))


def test_fill_gives_every_bucket_and_wide_a_column_per_ticker(db: Quant) -> None:
    span = ("2026-03-02T12:00", "2026-03-02T16:00")
    filled = db.sentiment(["MSFT", "AAPL"], *span, model="m1", fill=True)
    assert list(filled.columns) == SERIES_COLUMNS
    assert len(filled) == 2 * 4
    aapl = filled[filled["ticker"] == "AAPL"]
    assert aapl["documents"].tolist() == [0, 2, 0, 1]
    assert aapl["mean_score"].isna().tolist() == [True, False, True, False]
    assert set(filled["model_version"]) == {"m1"}

    table = db.sentiment(["MSFT", "AAPL", "NVDA"], *span, model="m1", fill=True, wide=True)
    assert isinstance(table.index, pd.DatetimeIndex) and str(table.index.tz) == "UTC"
    assert list(table.index) == list(
        pd.date_range("2026-03-02 12:00", periods=4, freq="h", tz="UTC")
    )
    assert list(table.columns) == ["MSFT", "AAPL", "NVDA"]
    assert table.loc["2026-03-02 13:00", "AAPL"] == pytest.approx(0.125)
    assert table["NVDA"].isna().all() and table.attrs["model_version"] == "m1"
    counts = db.sentiment(["AAPL"], *span, model="m1", wide=True, value="documents")
    assert counts["AAPL"].dtype == np.int64 and counts["AAPL"].tolist() == [2, 1]
    with pytest.raises(ConfigError, match="wide frames of 'title'"):
        db.sentiment("AAPL", *span, wide=True, value="title")


def test_alerts_of_a_backfill_are_found_by_event_time(db: Quant) -> None:
    day = ("2025-06-10", "2025-06-11")
    assert db.alerts(*day).empty  # fired now, so not in 2025 by fired_at
    found = db.alerts(*day, tickers="AAPL", by="window_end")
    assert found["alert_id"].tolist() == ["a1"]
    assert found["window_end"].iloc[0] == pd.Timestamp(OLD)
    with pytest.raises(ConfigError, match="alerts by 'published_at'"):
        db.alerts(*day, by="published_at")  # type: ignore[arg-type]


def test_a_series_keeps_to_one_model(db: Quant, tmp_path: Path) -> None:
    day = ("2026-03-02", "2026-03-03")
    newest = db.sentiment("AAPL", *day)  # m2 scored AAPL most recently in the range
    assert newest["model_version"].tolist() == ["m2"]
    assert newest["documents"].tolist() == [1] and newest["mean_score"].iloc[0] == pytest.approx(
        0.05
    )
    m1 = db.sentiment("AAPL", *day, model="m1")
    assert m1["documents"].tolist() == [2, 1] and set(m1["model_version"]) == {"m1"}
    # Before m2 scored anything (known at 13:30), the newest model known was m1.
    then = db.sentiment("AAPL", *day, as_of=T0 + timedelta(minutes=30))
    assert then["model_version"].tolist() == ["m1"] and then["documents"].tolist() == [2]
    # The range decides: where only m1 scored, m1 is the default.
    later = db.sentiment("AAPL", "2026-03-02T15:00", "2026-03-02T16:00")
    assert later["model_version"].tolist() == ["m1"]
    # One model for all tickers asked, so their series share a scale.
    both = db.sentiment(["AAPL", "MSFT"], *day)
    assert set(both["model_version"]) == {"m2"} and set(both["ticker"]) == {"AAPL"}
    views = db.sql(
        "SELECT model_version, sum(documents) AS n FROM {db}.sentiment_1d "
        "WHERE ticker = 'AAPL' GROUP BY model_version ORDER BY model_version"
    )
    assert views.to_dict("records") == [
        {"model_version": "m1", "n": 3},
        {"model_version": "m2", "n": 1},
    ]
