"""Reading a source from a local file: a path or a file:// URL, bounded in size."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from infra.errors import SourceError

# The largest input read, from a file or over HTTP.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def file_path(location: str) -> Path:
    """Return the path of a file:// URL or a plain path.

    Raises:
        SourceError: ``location`` is a URL of another scheme, or a remote file:// URL.
    """
    scheme = _SCHEME.match(location)
    if scheme is None:
        return Path(location)
    if scheme.group(1).lower() != "file":
        msg = f"{location}: unsupported URL scheme {scheme.group(1)!r}"
        raise SourceError(msg, reason="bad_url")
    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        msg = f"{location}: file:// URLs must name a local file"
        raise SourceError(msg, reason="bad_url")
    return Path(unquote(parts.path))


def read_file(location: str, max_bytes: int = MAX_RESPONSE_BYTES) -> bytes:
    """Return the bytes of a file named by a path or a file:// URL.

    Raises:
        SourceError: the file cannot be read or is larger than ``max_bytes``.
    """
    path = file_path(location)
    try:
        if path.stat().st_size > max_bytes:
            msg = f"{path}: file larger than {max_bytes} bytes"
            raise SourceError(msg, reason="too_large")
        with path.open("rb") as handle:
            # Bounded even if the file grew since stat().
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        reason = "not_found" if isinstance(exc, FileNotFoundError) else "unreadable"
        msg = f"{path}: {exc.strerror or exc}"
        raise SourceError(msg, reason=reason) from exc
    if len(data) > max_bytes:
        msg = f"{path}: file larger than {max_bytes} bytes"
        raise SourceError(msg, reason="too_large")
    return data
