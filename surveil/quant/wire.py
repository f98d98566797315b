"""The codec of the worker's query endpoint, both ways: JSON with tagged datetimes and dates.

```
GET  /surveil/query/   -> {"database": "surveil", "dsn_path": "/abs/chdb/folder", ...}
POST /surveil/query/   {"sql": "SELECT ... FROM {db}.scores ...", "parameters": {...}}
                       -> 200 {"columns": [...], "types": [...], "rows": [[...], ...]}
                       -> 4xx {"error": "..."}
```

Datetimes travel as ``{"$datetime": "<ISO 8601 with offset>"}`` and dates as
``{"$date": "YYYY-MM-DD"}``, both ways; Decimal, UUID, bytes and other values without a JSON
type as strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from infra.db import Parameters
from infra.errors import ConfigError, DecodeError

QUERY_PATH = "/surveil/query/"


def encode(value: Any, *, naive_is_utc: bool = False) -> Any:
    """Return a value as JSON-ready data: datetimes and dates tagged, the rest as strings.

    Args:
        value: a query parameter or a result cell.
        naive_is_utc: read naive datetimes as UTC (clickhouse-connect returns UTC ones naive).

    Raises:
        ConfigError: a naive datetime and ``naive_is_utc`` is false.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if not naive_is_utc:
                msg = f"{value.isoformat()} has no time zone: pass an aware datetime (e.g. UTC)"
                raise ConfigError(msg)
            value = value.replace(tzinfo=UTC)
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(item, naive_is_utc=naive_is_utc) for item in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v, naive_is_utc=naive_is_utc) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)  # Decimal, UUID, IP addresses: their canonical text


def decode(value: Any) -> Any:
    """Return JSON data with ``$datetime`` and ``$date`` tags turned back into values.

    Raises:
        DecodeError: a tag does not hold an ISO date, or a datetime has no offset.
    """
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"$datetime"}:
        try:
            parsed = datetime.fromisoformat(value["$datetime"])
        except (TypeError, ValueError) as exc:
            err = DecodeError("bad_datetime", f"{value['$datetime']!r}: {exc}")
            raise err from exc
        if parsed.tzinfo is None:
            err = DecodeError("naive_datetime", f"{value['$datetime']!r} has no UTC offset")
            raise err
        return parsed
    if value.keys() == {"$date"}:
        try:
            return date.fromisoformat(value["$date"])
        except (TypeError, ValueError) as exc:
            err = DecodeError("bad_date", f"{value['$date']!r}: {exc}")
            raise err from exc
    return {k: decode(v) for k, v in value.items()}


def request_body(sql: str, parameters: Parameters) -> str:
    """Return the body of a query request.

    Raises:
        ConfigError: a parameter is a naive datetime.
    """
    return json.dumps({"sql": sql, "parameters": encode(parameters)})


def read_request(raw: bytes) -> tuple[str, Parameters]:
    """Return the SQL and decoded parameters of a request body.

    Raises:
        DecodeError: the body is not ``{"sql": str, "parameters": {...}}``.
    """
    try:
        data = json.loads(raw)
    except ValueError as exc:
        err = DecodeError("bad_json", str(exc))
        raise err from exc
    if not isinstance(data, dict) or not isinstance(data.get("sql"), str):
        err = DecodeError("bad_request", 'send {"sql": "...", "parameters": {...}}')
        raise err
    parameters = data.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        err = DecodeError("bad_request", "parameters must be an object")
        raise err
    return data["sql"], decode(parameters)


def answer_body(payload: dict[str, Any]) -> bytes:
    """Return an answer's body; result cells' naive datetimes are UTC."""
    return json.dumps(encode(payload, naive_is_utc=True)).encode()


def answer_error(data: Any) -> str:
    """Return the reason in an error answer's body, or an empty string."""
    return str(data.get("error") or "") if isinstance(data, dict) else ""
