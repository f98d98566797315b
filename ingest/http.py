"""Fetching over HTTP and from files, politely.

`Fetcher` is what the ingest scheduler uses for every source: one connection pool, a
per-host rate limit (`ingest.ratelimit`), conditional GET, retries with backoff, a size cap
and SEC's User-Agent rule (`ingest.contact.require_contact`); files are read by `ingest.files`.
`read_location` is the plain one-shot fetch for ad-hoc use.

Validators (ETag, Last-Modified) and delivery
---------------------------------------------
`Fetcher.get` sends the stored validators but never stores new ones. The caller stores
them with `Fetcher.commit` once the documents of the response are safe (Kafka acked). If
``get`` stored them and the process died before the documents reached Kafka, the next run
would get a 304 and those documents would be lost for good; committing afterwards turns
such a crash into a re-fetch, whose duplicates the seen-id check drops.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from infra.closing import Closing
from infra.errors import ConfigError, SourceError
from infra.retry import Backoff, retry_after_seconds
from ingest.contact import require_contact
from ingest.files import MAX_RESPONSE_BYTES, read_file
from ingest.ratelimit import HostRateLimiter

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ValidatorStore(Protocol):
    """Where the ETag and Last-Modified of each URL are kept between runs."""

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """Return the stored ``(etag, last_modified)`` of ``url``, None where unknown."""
        ...

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Store the validators of ``url``, replacing what was there."""
        ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response, read in full.

    Attributes:
        url: the URL asked for (the key validators are stored under).
        status: the HTTP status (200 for files).
        body: the response body; ``b""`` when ``not_modified``.
        not_modified: the server answered 304 to the conditional GET.
        etag: the ETag of the response (on a 304, the one sent).
        last_modified: the Last-Modified of the response (on a 304, the one sent).
        content_type: the media type of Content-Type, without parameters, lowercased.
        encoding: the charset declared in Content-Type, if any.
        attempts: requests made, retries included.
        waited: seconds slept for backoff, Retry-After and the rate limit.
        final_url: where redirects ended, when any were followed.
    """

    url: str
    status: int
    body: bytes
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    encoding: str | None = None
    attempts: int = 1
    waited: float = 0.0
    final_url: str | None = None


class _Retryable(Exception):
    """An attempt failed in a way worth retrying after ``delay`` seconds.

    Args:
        detail: what happened, for a person.
        delay: the seconds to wait before the next attempt.
        reason: the `SourceError` reason should it be the last attempt.
        status: the HTTP status, if there was an answer.
    """

    def __init__(
        self, detail: str, delay: float, *, reason: str, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.delay = delay
        self.reason = reason
        self.status = status


class Fetcher(Closing):
    """Fetch URLs politely; one instance is shared by every source of a run.

    Args:
        user_agent: the User-Agent header; for SEC hosts it must name a contact.
        timeout: seconds for connecting and for each read.
        max_bytes: the largest body accepted.
        retries: retries after the first attempt, on 429, 5xx gateway errors and
            transport errors.
        backoff: the first backoff bound in seconds; it doubles with each retry (full
            jitter: the wait is uniform between 0 and the bound).
        backoff_max: the largest backoff bound.
        retry_after_max: the longest Retry-After honoured; a longer one fails the fetch.
        rate_limits: requests per second per host name.
        default_rate: requests per second for hosts not in ``rate_limits``.
        validators: where ETag and Last-Modified are kept; None disables conditional GET.
        sleep: blocks for the given seconds (tests inject a fake).
        clock: monotonic seconds (tests inject a fake).
        transport: an httpx transport (tests may inject `httpx.MockTransport`).

    Raises:
        ConfigError: the user agent is empty or a rate is not positive.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float = 20.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
        retries: int = 4,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 300.0,
        rate_limits: Mapping[str, float] | None = None,
        default_rate: float = 2.0,
        validators: ValidatorStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not user_agent.strip():
            msg = "a User-Agent is required"
            raise ConfigError(msg)
        if retries < 0:
            msg = f"retries must be 0 or more, got {retries}"
            raise ConfigError(msg)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._retries = retries
        self._retry_after_max = retry_after_max
        self._validators = validators
        self._sleep = sleep
        self._limiter = HostRateLimiter(rate_limits or {}, default_rate, clock=clock, sleep=sleep)
        # The one retry policy (infra/retry.py). Jitter only spreads retries out; it needs
        # no cryptographic strength.
        jitter = random.Random().random  # noqa: S311
        self._policy = Backoff(backoff, max(backoff, backoff_max), jitter)
        # Redirects are followed by hand (see _send) so that every hop passes the rate
        # limit and the SEC User-Agent check.
        self._client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        """Fetch ``url`` (http(s), file:// or a path), conditionally where validators exist.

        Does not store the new validators: call `commit` once the documents are safe.

        Raises:
            SourceError: the fetch failed for good (a 4xx, retries exhausted, a timeout,
                a Retry-After above ``retry_after_max``, a body over ``max_bytes``).
            ConfigError: an SEC host is asked with a User-Agent that names no contact.
        """
        if not url.startswith(("http://", "https://")):
            return Fetched(url=url, status=200, body=read_file(url, self._max_bytes))
        sent = self._conditional_headers(url)
        sent.update(headers or {})
        waits: list[float] = []
        attempts = self._retries + 1
        retry = _Retryable("not attempted", 0.0, reason="error")
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                log.warning("%s: %s; retry %d in %.1f s", url, retry, attempt - 1, retry.delay)
                self._pause(retry.delay, waits)
            try:
                return self._attempt(url, sent, attempt, waits)
            except _Retryable as exc:
                retry = exc
        msg = f"{url}: {retry}, after {attempts} attempts"
        raise SourceError(msg, reason=retry.reason, status=retry.status) from retry.__cause__

    def commit(self, fetched: Fetched) -> None:
        """Store the validators of ``fetched``; call it once its documents are safe.

        A 304 changes nothing, and neither does a file. A 200 without validators clears
        the stored ones, since the server no longer offers conditional GET.
        """
        if self._validators is None or fetched.not_modified:
            return
        if not fetched.url.startswith(("http://", "https://")):
            return
        self._validators.save_validators(fetched.url, fetched.etag, fetched.last_modified)

    def _conditional_headers(self, url: str) -> dict[str, str]:
        if self._validators is None:
            return {}
        etag, last_modified = self._validators.validators(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return headers

    def _pause(self, seconds: float, waits: list[float]) -> None:
        if seconds > 0:
            self._sleep(seconds)
            waits.append(seconds)

    def _attempt(
        self, url: str, headers: dict[str, str], attempt: int, waits: list[float]
    ) -> Fetched:
        """Make one request (redirects included) and read it.

        Raises:
            _Retryable: the attempt failed in a way worth retrying.
            SourceError: the attempt failed in a way no retry will fix.
        """
        try:
            response = self._send(url, headers, waits)
            try:
                return self._read(url, headers, response, attempt, waits)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            reason = f"timed out ({type(exc).__name__}, timeout {self._timeout:g} s)"
            raise _Retryable(reason, self._backoff_delay(attempt), reason="timeout") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise _Retryable(reason, self._backoff_delay(attempt), reason="refused") from exc
        except httpx.HTTPError as exc:
            msg = f"{url}: {type(exc).__name__}: {exc}"
            raise SourceError(msg, reason="error") from exc

    def _send(self, url: str, headers: dict[str, str], waits: list[float]) -> httpx.Response:
        request = self._client.build_request("GET", url, headers=headers)
        for _ in range(MAX_REDIRECTS + 1):
            require_contact(request.url.host, request.headers.get("User-Agent", ""))
            waited = self._limiter.acquire(request.url.host)
            if waited > 0:
                waits.append(waited)
            response = self._client.send(request, stream=True)
            if response.next_request is None:
                return response
            response.close()
            request = response.next_request
        msg = f"{url}: more than {MAX_REDIRECTS} redirects"
        raise SourceError(msg, reason="bad_url")

    def _read(
        self,
        url: str,
        sent: dict[str, str],
        response: httpx.Response,
        attempt: int,
        waits: list[float],
    ) -> Fetched:
        status = response.status_code
        if status in RETRY_STATUSES:
            delay = self._retry_delay(url, response, attempt)
            detail = f"HTTP {status} {response.reason_phrase}"
            raise _Retryable(detail, delay, reason="http_status", status=status)
        if status != 304 and not response.is_success:
            msg = f"{url}: HTTP {status} {response.reason_phrase}"
            raise SourceError(msg, reason=status_reason(status), status=status)
        not_modified = status == 304
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        final_url = str(response.url)
        return Fetched(
            url=url,
            status=status,
            body=b"" if not_modified else read_body(response, url, self._max_bytes),
            not_modified=not_modified,
            etag=response.headers.get("ETag", sent.get("If-None-Match") if not_modified else None),
            last_modified=response.headers.get(
                "Last-Modified", sent.get("If-Modified-Since") if not_modified else None
            ),
            content_type=media_type or None,
            encoding=response.charset_encoding,
            attempts=attempt,
            waited=sum(waits),
            final_url=final_url if final_url != url else None,
        )

    def _backoff_delay(self, attempt: int) -> float:
        return self._policy.delay(attempt)

    def _retry_delay(self, url: str, response: httpx.Response, attempt: int) -> float:
        """Return how long to wait before retrying a 429 or 5xx response.

        Raises:
            SourceError: the server asks for a wait longer than ``retry_after_max``.
        """
        asked = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
        if asked is None:
            return self._backoff_delay(attempt)
        if asked > self._retry_after_max:
            msg = (
                f"{url}: HTTP {response.status_code} with Retry-After of {asked:.0f} s, "
                f"more than retry_after_max ({self._retry_after_max:g} s); giving up"
            )
            raise SourceError(
                msg,
                reason="retry_after_too_long",
                status=response.status_code,
                retry_after=asked,
            )
        return asked


def status_reason(status: int) -> str:
    """Return the `SourceError` reason of an HTTP error status."""
    return "not_found" if status in (404, 410) else "http_status"


def read_body(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """Read a streamed response, failing as soon as it exceeds ``max_bytes``.

    Raises:
        SourceError: the body (or its declared Content-Length) is over ``max_bytes``.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        msg = f"{url}: response larger than {max_bytes} bytes (Content-Length {declared})"
        raise SourceError(msg, reason="too_large")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            msg = f"{url}: response larger than {max_bytes} bytes"
            raise SourceError(msg, reason="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def read_location(
    location: str,
    *,
    timeout: float = 20.0,
    max_bytes: int = MAX_RESPONSE_BYTES,
    user_agent: str = "surveil/0.1",
) -> bytes:
    """Return the raw bytes of a feed from an http(s) URL, a file:// URL or a path.

    One plain request: no retries, rate limit or validators (use `Fetcher` for those).

    Raises:
        SourceError: the feed could not be fetched, or is larger than ``max_bytes``.
    """
    if not location.startswith(("http://", "https://")):
        return read_file(location, max_bytes)
    try:
        with httpx.stream(
            "GET",
            location,
            timeout=timeout,
            follow_redirects=True,
            headers={"User-Agent": user_agent},
        ) as response:
            response.raise_for_status()
            return read_body(response, location, max_bytes)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        msg = f"{location}: {exc}"
        raise SourceError(msg, reason=status_reason(status), status=status) from exc
    except httpx.HTTPError as exc:
        reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "refused"
        msg = f"{location}: {exc}"
        raise SourceError(msg, reason=reason) from exc
