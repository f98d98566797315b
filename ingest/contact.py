"""SEC's User-Agent rule: a request to an SEC host names a contact (an e-mail or a URL).

A module of its own, importing nothing of ingest/, so that the fetcher (`ingest.http`) can
check it without depending on the EDGAR sources that build on it.
"""

from __future__ import annotations

import re

from infra.errors import ConfigError

SEC_ACCESS_URL = "https://www.sec.gov/os/accessing-edgar-data"
_CONTACT = re.compile(r"[^@\s()<>]+@[^@\s()<>]+\.[A-Za-z]{2,}|https?://[^\s()<>]+\.[^\s()<>]+")


def require_contact(host: str, user_agent: str) -> None:
    """Check that a request to an SEC host carries a User-Agent naming a contact.

    Raises:
        ConfigError: ``host`` is an SEC host and ``user_agent`` has no e-mail or URL.
    """
    host = host.lower()
    if (host == "sec.gov" or host.endswith(".sec.gov")) and not _CONTACT.search(user_agent):
        msg = (
            f"{host}: SEC asks for a User-Agent naming a contact (an e-mail address), "
            f"e.g. 'surveil admin@example.com'; got {user_agent!r}; see {SEC_ACCESS_URL}"
        )
        raise ConfigError(msg)
