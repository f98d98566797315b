"""The worker's read-only query endpoint, and `WorkerReader`, the client that reads through it.

An embedded chDB folder belongs to one process: while `surveil worker` runs, quants query
through its web server on 127.0.0.1 instead of opening the folder.

```
GET  /surveil/query/   -> {"database": "surveil", "dsn_path": "/abs/chdb/folder", ...}
POST /surveil/query/   {"sql": "SELECT ... FROM {db}.scores ...", "parameters": {...}}
                       -> 200 {"columns": [...], "types": [...], "rows": [[...], ...]}
                       -> 400 {"error": "..."}  refused (not a read, bad SQL, over a limit)
                       -> 401 {"error": "..."}  no bearer token, or not the worker's
                       -> 403 {"error": "..."}  Host not loopback, or a foreign Origin
                       -> 413 {"error": "..."}  body over 1 MiB
```

Every request carries ``Authorization: Bearer <token>``, the token the worker keeps in
``<state_dir>/query.token`` (mode 0600). A Host other than 127.0.0.1, localhost or [::1]
(DNS rebinding), or an Origin of any other host (a web page), is refused before the token is
looked at.

Datetimes travel as ``{"$datetime": "<ISO 8601 with offset>"}`` and dates as
``{"$date": "YYYY-MM-DD"}``, both ways; Decimal, UUID, bytes and other values without a JSON
type as strings. Queries run on the worker's `ReadOnlyReader`, in a thread of their own: a
session apart from the writers', read-only and limited in time, memory and result rows.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from infra.db import QueryLimits, ReadOnlyReader, Warehouse, redact
from infra.errors import ConfigError, DecodeError, StoreError
from infra.web import foreign

if TYPE_CHECKING:
    from infra.settings import Settings
    from streams.app import Pipeline

log = logging.getLogger(__name__)

QUERY_PATH = "/surveil/query/"
TOKEN_FILE = "query.token"  # noqa: S105 - the file's name, not a secret
MAX_BODY = 1 << 20  # bytes of one request
MAX_ROWS = QueryLimits().rows  # rows of one result, unless the settings say otherwise


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


def query_limits(settings: Settings) -> QueryLimits:
    """Return the per-query limits the settings give the quants' reads."""
    return QueryLimits(
        seconds=settings.query_timeout_s,
        memory_bytes=settings.query_max_memory_mb << 20,
        rows=settings.query_max_rows,
    )


def token_path(state_dir: Path) -> Path:
    """Return where the worker keeps the endpoint's bearer token."""
    return state_dir / TOKEN_FILE


def read_token(path: Path) -> str | None:
    """Return the token of a token file, or None when there is none yet.

    Raises:
        ConfigError: the file is there but cannot be read.
    """
    try:
        token = path.read_text("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the query token {path}: {exc}"
        raise ConfigError(msg) from exc
    return token or None


def ensure_token(path: Path) -> str:
    """Return the endpoint's bearer token, writing a new one (mode 0600) when there is none.

    An existing token is kept, so clients keep working across worker restarts; delete the
    file to change it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    token = read_token(path)
    if token is not None:
        path.chmod(0o600)  # a copied or restored file may have come back readable to others
        return token
    token = secrets.token_urlsafe(32)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    # Created 0600 and only then filled: the token is never readable by others, not even
    # for a moment, whatever the umask.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.replace(partial, path)
    return token


def check_request(headers: Mapping[str, str], token: str) -> tuple[int, str] | None:
    """Return the status and reason to refuse a request with, or None to serve it.

    403: a Host that is not loopback (a DNS-rebound name) or an Origin of another host (a web
    page), see `infra.web.foreign`. 401: no bearer token or another one, compared in
    constant time.
    """
    if (reason := foreign(headers)) is not None:
        return 403, reason
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        return 401, f"send Authorization: Bearer <the token in the worker's {TOKEN_FILE}>"
    return None


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


def register(pipeline: Pipeline, warehouse: Warehouse, settings: Settings) -> Any:
    """Add ``/surveil/query/`` to the worker's web server; return the view class.

    Opens the reader (a session of its own on the warehouse's data, and a thread of its own,
    never the store thread) and writes the token file if there is none; the reader closes
    when the app stops.

    Args:
        pipeline: the app whose web server serves the endpoint.
        warehouse: the worker's open warehouse, whose data the reader reads.
        settings: the DSN (told to clients so they can check it is the data they mean),
            the state folder of the token and the limits of a query.
    """
    from faust.web import View  # noqa: PLC0415 - Faust is heavy; clients never need it

    limits = query_limits(settings)
    reader = ReadOnlyReader(settings.dsn, warehouse.database, limits)
    token = ensure_token(token_path(settings.state_dir))
    pool = ThreadPoolExecutor(1, thread_name_prefix="query")
    counters = pipeline.counters
    identity = {
        "database": warehouse.database,
        "dsn_path": dsn_location(settings.dsn),
        "max_rows": limits.rows,
        "max_seconds": limits.seconds,
        "max_memory_bytes": limits.memory_bytes,
        "max_body": MAX_BODY,
    }

    def reply(view: Any, payload: dict[str, Any], status: int = 200) -> Any:
        return view.bytes(_body(payload), content_type="application/json", status=status)

    def refuse(view: Any, request: Any) -> Any | None:
        refusal = check_request(request.headers, token)
        if refusal is None:
            return None
        status, reason = refusal
        counters.inc("query.unauthorized" if status == 401 else "query.forbidden")
        log.warning("query request refused (%d): %s", status, reason)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return view.bytes(
            _body({"error": reason}),
            content_type="application/json",
            status=status,
            headers=headers,
        )

    async def get(view: Any, request: Any, **_: Any) -> Any:
        return refuse(view, request) or reply(view, identity)

    async def post(view: Any, request: Any, **_: Any) -> Any:
        if (refused := refuse(view, request)) is not None:
            return refused
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
            result = await loop.run_in_executor(pool, reader.run, sql, parameters)
        except (DecodeError, StoreError) as exc:
            counters.inc("query.refused")
            log.info("query refused: %s", exc)
            return reply(view, {"error": str(exc)}, 400)
        counters.inc("query.served")
        payload = {"columns": result.columns, "types": result.types, "rows": result.rows}
        # Encoding a million rows takes seconds: off the event loop and off the query thread.
        body = await loop.run_in_executor(None, _body, payload)
        return view.bytes(body, content_type="application/json")

    async def close_reader(*_: Any, **__: Any) -> None:
        # In the query thread, so after the query in flight (at most its time limit).
        await asyncio.get_running_loop().run_in_executor(pool, reader.close)
        pool.shutdown()

    pipeline.app.on_before_shutdown.connect(close_reader)
    view = type("SurveilQuery", (View,), {"get": get, "post": post, "__module__": __name__})
    return pipeline.app.page(QUERY_PATH)(view)


class WorkerReader:
    """A `Reader` over a running worker's query endpoint.

    Args:
        base_url: the worker's web server, e.g. ``http://127.0.0.1:6066``.
        token: the worker's bearer token (see `read_token`).
        timeout: seconds to wait for one answer; `identity` raises it to the worker's time
            limit of a query, plus a margin.
    """

    def __init__(self, base_url: str, token: str, timeout: float = 150.0) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env off: a proxy from the environment must not see loopback traffic.
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )

    def identity(self, timeout: float | None = None) -> dict[str, Any]:
        """Return what the worker serves: its database, data location and limits.

        Raises:
            StoreError: no worker endpoint answers there, or it refuses the token.
        """
        try:
            response = self._client.get(QUERY_PATH, timeout=timeout or self._client.timeout)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            msg = f"no worker query endpoint at {self.base_url}: {exc}"
            raise StoreError(msg) from exc
        if response.status_code != httpx.codes.OK:
            msg = f"the worker at {self.base_url} answered {response.status_code}: {_error(data)}"
            raise StoreError(msg)
        if not isinstance(data, dict) or not {"database", "dsn_path"} <= data.keys():
            msg = f"{self.base_url}{QUERY_PATH} is not a surveil worker's query endpoint"
            raise StoreError(msg)
        if isinstance(data.get("max_seconds"), int | float):
            self._client.timeout = httpx.Timeout(float(data["max_seconds"]) + 30.0)
        return data

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only query in the worker; ``{db}`` names its database.

        ``settings`` are not sent: the worker's reader has its own read-only ones.

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
            raise StoreError(_error(data) or f"the worker answered {response.status_code}")
        try:
            rows = [tuple(decode(row)) for row in data["rows"]]
        except (DecodeError, KeyError, TypeError) as exc:
            msg = f"the worker's answer could not be read: {exc}"
            raise StoreError(msg) from exc
        return list(data["columns"]), rows

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _error(data: Any) -> str:
    """Return the reason in an error answer's body, or an empty string."""
    return str(data.get("error") or "") if isinstance(data, dict) else ""
