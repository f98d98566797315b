"""Who may talk to surveil's web pages: loopback hosts, and no web page of another origin.

Everything listens on 127.0.0.1, but a browser can still be pointed at it: a page of
another site sends its Origin, and a DNS-rebound name arrives with its own Host. Both are
refused, on every page of the worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_LOOPBACK_HOST = r"(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?"
_HOST = re.compile(_LOOPBACK_HOST, re.IGNORECASE)
_ORIGIN = re.compile(rf"https?://{_LOOPBACK_HOST}", re.IGNORECASE)


def foreign(headers: Mapping[str, str]) -> str | None:
    """Return why a request must be refused (403), or None when it comes from this machine.

    Refused: a Host that is not loopback (a DNS-rebound name), an Origin of another host.
    """
    host = headers.get("Host", "")
    if not _HOST.fullmatch(host.strip()):
        return f"Host {host!r} is refused: connect to 127.0.0.1, localhost or [::1]"
    origin = headers.get("Origin")
    if origin is not None and not _ORIGIN.fullmatch(origin.strip()):
        return f"Origin {origin!r} is refused: requests from web pages are not served"
    return None
