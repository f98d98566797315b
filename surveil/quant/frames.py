"""The DataFrames' types: pandas' own dtypes, the same for an empty frame as for a full one."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

TIME: Final = "datetime64[ns, UTC]"
TEXT = pd.StringDtype(na_value=np.nan)


def typed(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """Give a frame's columns the schema's dtypes, whether it has rows or not."""
    for column, dtype in schema.items():
        if dtype == TIME:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(TIME)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def utc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Make datetime columns UTC-aware: clickhouse-connect returns UTC times naive."""
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            frame[column] = values.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            frame[column] = values.dt.tz_localize("UTC")
    return frame
