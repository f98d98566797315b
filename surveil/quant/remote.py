"""`WorkerReader`: a `Reader` over a running worker's read-only query endpoint.

An embedded chDB folder belongs to one process: while `surveil worker` runs, quants query
through its web server on 127.0.0.1 (`surveil.quant.server`) instead of opening the folder.
"""

from __future__ import annotations

from typing import Any

import httpx

from infra.db import Parameters, Table
from infra.errors import DecodeError, StoreError
from surveil.quant.wire import QUERY_PATH, answer_error, decode, request_body


class WorkerReader:
    """A `Reader` over a running worker's query endpoint.

    Args:
        base_url: the worker's web server, e.g. ``http://127.0.0.1:6066``.
        token: the worker's bearer token (see `surveil.quant.token.read_token`).
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
            reason = answer_error(data)
            msg = f"the worker at {self.base_url} answered {response.status_code}: {reason}"
            raise StoreError(msg)
        if not isinstance(data, dict) or not {"database", "dsn_path"} <= data.keys():
            msg = f"{self.base_url}{QUERY_PATH} is not a surveil worker's query endpoint"
            raise StoreError(msg)
        if isinstance(data.get("max_seconds"), int | float):
            self._client.timeout = httpx.Timeout(float(data["max_seconds"]) + 30.0)
        return data

    def query(self, sql: str, parameters: Parameters = None, settings: Parameters = None) -> Table:
        """Run a read-only query in the worker; ``{db}`` names its database.

        ``settings`` are not sent: the worker's reader has its own read-only ones.

        Raises:
            ConfigError: a parameter is a naive datetime.
            StoreError: the worker refused the query or could not be reached.
        """
        headers = {"content-type": "application/json"}
        content = request_body(sql, parameters)
        try:
            response = self._client.post(QUERY_PATH, content=content, headers=headers)
        except httpx.HTTPError as exc:
            msg = f"the worker at {self.base_url} did not answer: {exc}"
            raise StoreError(msg) from exc
        try:
            data = response.json()
        except ValueError as exc:
            msg = f"the worker answered {response.status_code} without JSON: {response.text[:200]}"
            raise StoreError(msg) from exc
        if response.status_code != httpx.codes.OK:
            raise StoreError(answer_error(data) or f"the worker answered {response.status_code}")
        try:
            rows = [tuple(decode(row)) for row in data["rows"]]
        except (DecodeError, KeyError, TypeError) as exc:
            msg = f"the worker's answer could not be read: {exc}"
            raise StoreError(msg) from exc
        return list(data["columns"]), rows

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
