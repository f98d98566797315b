"""The Python API for quants: sentiment series, documents, alerts and SQL as DataFrames.

```python
from datetime import UTC, datetime
import surveil.quant as sv

with sv.connect() as db:
    frame = db.sentiment(["AAPL", "MSFT"], datetime(2026, 3, 1, tzinfo=UTC),
                         datetime(2026, 3, 2, tzinfo=UTC), freq="5min")
    means = db.sentiment(["AAPL", "MSFT"], "2026-03-01", "2026-03-08", fill=True, wide=True)
```

Times are aware datetimes, dates (midnight UTC) or ISO strings (UTC when they name no zone).
`connect` reads the same settings as the CLI (``SURVEIL_*`` variables, ``.env``).

The package, one module per kind of thing: `base` (the `Reader` interface every query takes),
`times` (moments and bucket widths), `frames` (dtypes), `series` and `records` (the queries),
`api` (`Quant`, `connect`), `wire`, `token`, `server` and `remote` (the worker's read-only
endpoint, its codec and its client), `plot` (charts).
"""

from surveil.quant.api import Quant, connect
from surveil.quant.times import DEFAULT_FREQ

__all__ = ["DEFAULT_FREQ", "Quant", "connect"]
