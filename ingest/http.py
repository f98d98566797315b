"""Fetching over HTTP and from files."""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.errors import SourceError

MAX_RESPONSE_BYTES = 10 * 1024 * 1024


def read_location(
    location: str,
    *,
    timeout: float = 20.0,
    max_bytes: int = MAX_RESPONSE_BYTES,
    user_agent: str = "surveil/0.1",
) -> bytes:
    """Return the raw bytes of a feed from an http(s) URL, a file:// URL or a path.

    Raises:
        SourceError: the feed could not be fetched, or is larger than ``max_bytes``.
    """
    if location.startswith(("http://", "https://")):
        try:
            with httpx.stream(
                "GET",
                location,
                timeout=timeout,
                follow_redirects=True,
                headers={"User-Agent": user_agent},
            ) as response:
                response.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        msg = f"{location}: response larger than {max_bytes} bytes"
                        raise SourceError(msg)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            msg = f"{location}: {exc}"
            raise SourceError(msg) from exc
    path = Path(location.removeprefix("file://"))
    try:
        if path.stat().st_size > max_bytes:
            msg = f"{path}: file larger than {max_bytes} bytes"
            raise SourceError(msg)
        return path.read_bytes()
    except OSError as exc:
        msg = f"{path}: {exc.strerror or exc}"
        raise SourceError(msg) from exc
