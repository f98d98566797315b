"""The worker's read-only query endpoint: the page `surveil worker` adds to its web server.

An embedded chDB folder belongs to one process: while `surveil worker` runs, quants query
through this page on 127.0.0.1 (`surveil.quant.remote.WorkerReader`) instead of opening the
folder. The requests and answers are those of `surveil.quant.wire`; refusals are

```
400 {"error": "..."}  refused (not a read, bad SQL, over a limit)
401 {"error": "..."}  no bearer token, or not the worker's
403 {"error": "..."}  Host not loopback, or a foreign Origin
413 {"error": "..."}  body over 1 MiB
```

Every request carries ``Authorization: Bearer <token>``, the token the worker keeps in
``<state_dir>/query.token`` (mode 0600). A Host other than 127.0.0.1, localhost or [::1]
(DNS rebinding), or an Origin of any other host (a web page), is refused before the token is
looked at. Queries run on the worker's `ReadOnlyReader`, in a thread of their own: a session
apart from the writers', read-only and limited in time, memory and result rows.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from infra.db import Warehouse
from infra.errors import DecodeError, StoreError
from infra.reader import QueryLimits, ReadOnlyReader
from infra.web import foreign
from surveil.quant.base import dsn_location, query_limits
from surveil.quant.token import TOKEN_FILE, ensure_token, token_path
from surveil.quant.wire import QUERY_PATH, answer_body, read_request

if TYPE_CHECKING:
    from infra.settings import Settings
    from streams.app import Pipeline
    from streams.counters import Counters

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes of one request
MAX_ROWS = QueryLimits().rows  # rows of one result, unless the settings say otherwise
JSON = "application/json"


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


class QueryPage:
    """What the page does for each request, on the worker's reader and query thread.

    Args:
        reader: the worker's read-only session; closed by `close`.
        token: the bearer token requests must carry.
        counters: the worker's counters (``query.served``, ``query.refused``, ...).
        identity: what a GET answers: the database, data location and limits.
    """

    def __init__(
        self, reader: ReadOnlyReader, token: str, counters: Counters, identity: dict[str, Any]
    ) -> None:
        self.reader = reader
        self.token = token
        self.counters = counters
        self.identity = identity
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="query")

    def refuse(self, view: Any, request: Any) -> Any | None:
        """Return the answer refusing a request by Host, Origin or token, or None to serve it."""
        refusal = check_request(request.headers, self.token)
        if refusal is None:
            return None
        status, reason = refusal
        self.counters.inc("query.unauthorized" if status == 401 else "query.forbidden")
        log.warning("query request refused (%d): %s", status, reason)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body = answer_body({"error": reason})
        return view.bytes(body, content_type=JSON, status=status, headers=headers)

    async def get(self, view: Any, request: Any) -> Any:
        """Answer what the worker serves."""
        refused = self.refuse(view, request)
        return refused or view.bytes(answer_body(self.identity), content_type=JSON)

    async def post(self, view: Any, request: Any) -> Any:
        """Run one query in the query thread and answer its rows, or why it was refused."""
        if (refused := self.refuse(view, request)) is not None:
            return refused
        raw = await self._body(request)
        if raw is None:
            self.counters.inc("query.too_large")
            body = answer_body({"error": f"request body over {MAX_BODY} bytes"})
            return view.bytes(body, content_type=JSON, status=413)
        loop = asyncio.get_running_loop()
        try:
            sql, parameters = read_request(raw)
            result = await loop.run_in_executor(self.pool, self.reader.run, sql, parameters)
        except (DecodeError, StoreError) as exc:
            self.counters.inc("query.refused")
            log.info("query refused: %s", exc)
            return view.bytes(answer_body({"error": str(exc)}), content_type=JSON, status=400)
        self.counters.inc("query.served")
        payload = {"columns": result.columns, "types": result.types, "rows": result.rows}
        # Encoding a million rows takes seconds: off the event loop and off the query thread.
        body = await loop.run_in_executor(None, answer_body, payload)
        return view.bytes(body, content_type=JSON)

    @staticmethod
    async def _body(request: Any) -> bytes | None:
        """Return a request's body, or None when it is over `MAX_BODY`."""
        if (request.content_length or 0) > MAX_BODY:
            return None
        raw = bytearray()
        async for chunk in request.content.iter_any():
            raw += chunk
            if len(raw) > MAX_BODY:  # chunked bodies carry no length up front
                return None
        return bytes(raw)

    async def close(self, *_: Any, **__: Any) -> None:
        """Close the reader in the query thread, so after the query in flight."""
        # At most the query's time limit away.
        await asyncio.get_running_loop().run_in_executor(self.pool, self.reader.close)
        self.pool.shutdown()


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
    identity = {
        "database": warehouse.database,
        "dsn_path": dsn_location(settings.dsn),
        "max_rows": limits.rows,
        "max_seconds": limits.seconds,
        "max_memory_bytes": limits.memory_bytes,
        "max_body": MAX_BODY,
    }
    page = QueryPage(
        ReadOnlyReader(settings.dsn, warehouse.database, limits),
        ensure_token(token_path(settings.state_dir)),
        pipeline.counters,
        identity,
    )

    async def get(view: Any, request: Any, **_: Any) -> Any:
        return await page.get(view, request)

    async def post(view: Any, request: Any, **_: Any) -> Any:
        return await page.post(view, request)

    pipeline.app.on_before_shutdown.connect(page.close)
    view = type("SurveilQuery", (View,), {"get": get, "post": post, "__module__": __name__})
    return pipeline.app.page(QUERY_PATH)(view)
