"""The worker's read-only query endpoint, and `WorkerReader`, the client that reads through it.

An embedded chDB folder belongs to one process: while `surveil worker` runs, quants query
through its web server on 127.0.0.1 instead of opening the folder.

```
GET  /surveil/query/   -> {"database": "surveil", "dsn_path": "/abs/chdb/folder", ...}
POST /surveil/query/   {"sql": "SELECT ... FROM {db}.scores ...", "parameters": {...}}
                       -> 200 {"columns": [...], "types": [...], "rows": [[...], ...]}
                       -> 400 {"error": "..."}  refused (read-only, bad SQL, over the row cap)
                       -> 413 {"error": "..."}  body over 1 MiB
```

Datetimes travel as ``{"$datetime": "<ISO 8601 with offset>"}`` and dates as
``{"$date": "YYYY-MM-DD"}``, both ways; Decimal, UUID, bytes and other values without a JSON
type as strings. The worker runs each query in its store thread, the one that owns ClickHouse,
with ``readonly=1`` forced whatever the client asks for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx
from clickhouse_connect.driver.exceptions import ClickHouseError

from infra.db import Warehouse, redact
from infra.errors import ConfigError, DecodeError, StoreError

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)

QUERY_PATH = "/surveil/query/"
MAX_BODY = 1 << 20  # bytes of one request
MAX_ROWS = 1_000_000  # rows of one result
MAX_SECONDS = 120  # a query holds the store thread, so the writers wait behind it
# readonly=1 comes last: ClickHouse refuses setting changes after it, our own included.
FORCED_SETTINGS = {"max_execution_time": MAX_SECONDS, "readonly": 1}
# readonly=1 lets both through: chDB runs INTO OUTFILE in-process, writing the file, and
# KILL QUERY is allowed to readonly users.
_OUTFILE = re.compile(r"\bOUTFILE\b", re.IGNORECASE)
_KILL = re.compile(r"^\W*KILL\b", re.IGNORECASE)
_READ_ONLY = "the worker's query endpoint is read-only"
_NOT_STREAMABLE = "Streaming query is not supported"


def dsn_location(dsn: str) -> str:
    """Return where a DSN's data lives: the real path of a chDB folder, or the server URL."""
    if dsn.startswith("chdb:"):
        return os.path.realpath(dsn.removeprefix("chdb://"))
    return redact(dsn)


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


def run_query(warehouse: Warehouse, sql: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Run one read-only query with the row cap; return columns, types and encoded rows.

    Blocks: call it from the thread that owns the warehouse.

    Raises:
        StoreError: ClickHouse refused the query (read-only included), or it has too many rows.
    """
    if _OUTFILE.search(sql):
        msg = f"{_READ_ONLY}: INTO OUTFILE would write a file"
        raise StoreError(msg)
    if _KILL.match(sql):
        msg = f"{_READ_ONLY}: KILL would stop queries"
        raise StoreError(msg)
    sql = sql.replace("{db}", warehouse.database)
    try:
        try:
            columns, types, rows = _streamed(warehouse, sql, parameters)
        except ClickHouseError as exc:
            if _NOT_STREAMABLE not in str(exc):
                raise
            # SHOW, DESCRIBE, EXPLAIN (and every write) do not stream in chDB: run them whole,
            # still under readonly=1, which refuses the writes.
            result = warehouse.client.query(sql, parameters=parameters, settings=FORCED_SETTINGS)
            columns = list(result.column_names)
            types = [t.name for t in result.column_types]
            rows = list(result.result_rows)
            _cap(len(rows))
    except ClickHouseError as exc:
        if "READONLY" in str(exc):
            msg = f"{_READ_ONLY}: {exc}"
            raise StoreError(msg) from exc
        msg = f"query failed: {exc}"
        raise StoreError(msg) from exc
    return {"columns": columns, "types": types, "rows": rows}


def _streamed(
    warehouse: Warehouse, sql: str, parameters: dict[str, Any] | None
) -> tuple[list[str], list[str], list[Any]]:
    rows: list[Any] = []
    with warehouse.client.query_row_block_stream(
        sql, parameters=parameters, settings=FORCED_SETTINGS
    ) as stream:
        columns = list(stream.source.column_names)
        types = [t.name for t in stream.source.column_types]
        for block in stream:
            rows.extend(block)
            _cap(len(rows))  # leaving the stream early stops the query
    return columns, types, rows


def _cap(rows: int) -> None:
    if rows > MAX_ROWS:
        msg = f"the result has more than {MAX_ROWS:,} rows: aggregate, or add a LIMIT"
        raise StoreError(msg)


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(encode(payload, naive_is_utc=True)).encode()


def _request(raw: bytes) -> tuple[str, dict[str, Any] | None]:
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


def register(pipeline: Pipeline, warehouse: Warehouse, dsn: str) -> Any:
    """Add ``/surveil/query/`` to the worker's web server; return the view class.

    Args:
        pipeline: the app; queries run in its store thread, never beside the store agents.
        warehouse: the worker's open warehouse.
        dsn: its DSN, told to clients so they can check it is the data they mean.
    """
    from faust.web import View  # noqa: PLC0415 - Faust is heavy; clients never need it

    counters = pipeline.counters
    identity = {
        "database": warehouse.database,
        "dsn_path": dsn_location(dsn),
        "max_rows": MAX_ROWS,
        "max_body": MAX_BODY,
    }

    def reply(view: Any, payload: dict[str, Any], status: int = 200) -> Any:
        return view.bytes(_body(payload), content_type="application/json", status=status)

    async def get(view: Any, request: Any, **_: Any) -> Any:
        return reply(view, identity)

    async def post(view: Any, request: Any, **_: Any) -> Any:
        if (request.content_length or 0) > MAX_BODY:
            counters.inc("query.too_large")
            return reply(view, {"error": f"request body over {MAX_BODY} bytes"}, 413)
        raw = bytearray()
        async for chunk in request.content.iter_any():
            raw += chunk
            if len(raw) > MAX_BODY:  # chunked bodies carry no length up front
                counters.inc("query.too_large")
                return reply(view, {"error": f"request body over {MAX_BODY} bytes"}, 413)
        loop = asyncio.get_running_loop()
        try:
            sql, parameters = _request(bytes(raw))
            result = await loop.run_in_executor(
                pipeline.store_pool, run_query, warehouse, sql, parameters
            )
        except (DecodeError, StoreError) as exc:
            counters.inc("query.refused")
            log.info("query refused: %s", exc)
            return reply(view, {"error": str(exc)}, 400)
        counters.inc("query.served")
        # Encoding a million rows takes seconds: off the event loop and off the store thread.
        body = await loop.run_in_executor(None, _body, result)
        return view.bytes(body, content_type="application/json")

    view = type("SurveilQuery", (View,), {"get": get, "post": post, "__module__": __name__})
    return pipeline.app.page(QUERY_PATH)(view)


class WorkerReader:
    """A `Reader` over a running worker's query endpoint.

    Args:
        base_url: the worker's web server, e.g. ``http://127.0.0.1:6066``.
        timeout: seconds to wait for one answer (a query may run up to 120 s there).
    """

    def __init__(self, base_url: str, timeout: float = 150.0) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env off: a proxy from the environment must not see loopback traffic.
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def identity(self, timeout: float | None = None) -> dict[str, Any]:
        """Return what the worker serves: its database and data location.

        Raises:
            StoreError: no worker endpoint answers there.
        """
        try:
            response = self._client.get(QUERY_PATH, timeout=timeout or self._client.timeout)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            msg = f"no worker query endpoint at {self.base_url}: {exc}"
            raise StoreError(msg) from exc
        if not isinstance(data, dict) or not {"database", "dsn_path"} <= data.keys():
            msg = f"{self.base_url}{QUERY_PATH} is not a surveil worker's query endpoint"
            raise StoreError(msg)
        return data

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only query in the worker; ``{db}`` names its database.

        ``settings`` are not sent: the worker forces its own read-only ones.

        Raises:
            ConfigError: a parameter is a naive datetime.
            StoreError: the worker refused the query or could not be reached.
        """
        payload = json.dumps({"sql": sql, "parameters": encode(parameters)})
        headers = {"content-type": "application/json"}
        try:
            response = self._client.post(QUERY_PATH, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            msg = f"the worker at {self.base_url} did not answer: {exc}"
            raise StoreError(msg) from exc
        try:
            data = response.json()
        except ValueError as exc:
            msg = f"the worker answered {response.status_code} without JSON: {response.text[:200]}"
            raise StoreError(msg) from exc
        if response.status_code != httpx.codes.OK:
            error = data.get("error") if isinstance(data, dict) else None
            msg = str(error or f"the worker answered {response.status_code}")
            raise StoreError(msg)
        try:
            rows = [tuple(decode(row)) for row in data["rows"]]
        except (DecodeError, KeyError, TypeError) as exc:
            msg = f"the worker's answer could not be read: {exc}"
            raise StoreError(msg) from exc
        return list(data["columns"]), rows

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
