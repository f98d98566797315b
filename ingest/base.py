"""The Source interface, the result of one fetch, and what every parser shares.

A source turns the raw bytes of one response (a feed, a filing page, an API's JSON) into
documents and rejects. Fetching is not its business: `ingest.http.Fetcher` fetches politely
(rate limits, conditional GET, retries), `ingest.tickers.Linker` links and validates tickers,
and `ingest.runner` strings them together. A source's ``fetch()`` is the plain, impolite way
for one-off use (``surveil ingest feed``, tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from infra.errors import DecodeError
from ingest.text import decode
from streams.records import Document, Rejected, utcnow

log = logging.getLogger(__name__)

PAYLOAD_MAX_CHARS = 65_536


@dataclass
class Batch:
    """What one fetch of a source produced: good documents and rejected inputs."""

    documents: list[Document] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Source(Protocol):
    """A place documents come from (a feed, an API, a file).

    Attributes:
        name: unique name, stored with every document (``Document.source``).
        kind: the ``kind:`` of sources.yaml (``rss``, ``edgar-atom``, ``stocktwits`` ...).
        url: what the runner fetches: an http(s) URL, a file:// URL or a path.
    """

    name: str
    kind: str
    url: str

    def parse(self, raw: bytes, fetched_at: datetime) -> Iterable[Document | Rejected]:
        """Turn one response body into documents, and a `Rejected` for each bad input.

        Never raises on bad input: a body that is not what the kind expects gives one
        `Rejected` with a specific reason (``malformed_json``, ``not_a_feed`` ...).
        """
        ...


class SourceBase:
    """What every source is configured with; subclasses add ``kind`` and ``_parse``.

    Args:
        name: the source's name, stored with every document.
        url: an http(s) URL, a file:// URL or a local path.
        tickers: tickers every document of this source is about (e.g. a per-symbol feed).
        body_max_chars: bodies are cut to this many characters.
    """

    kind = ""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        tickers: Sequence[str] = (),
        body_max_chars: int = 20_000,
    ) -> None:
        self.name = name
        self.url = url
        self.tickers = tuple(tickers)
        self.body_max_chars = body_max_chars

    def parse(
        self, raw: bytes, fetched_at: datetime | None = None
    ) -> Iterator[Document | Rejected]:
        """Parse one response body (see `Source.parse`), fetched now unless told when."""
        return self._parse(raw, fetched_at or utcnow())

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        raise NotImplementedError

    def _reject(self, reason: str, detail: str, payload: bytes | str) -> Rejected:
        return reject(self.name, reason, detail, payload)

    def _refuse(self, err: DecodeError, payload: bytes | str) -> Rejected:
        return self._reject(err.reason, err.detail, payload)


def published(
    value: Any, parse: Callable[[Any], datetime | None], fetched_at: datetime, meta: dict[str, Any]
) -> datetime | None:
    """Return when a post was published; None when ``value`` is there but does not parse.

    A post without a time gets ``fetched_at``, and ``meta["published_missing"]`` says so.
    """
    if value is None:
        meta["published_missing"] = True
        return fetched_at
    return parse(value)


def reject(source: str, reason: str, detail: str, payload: bytes | str) -> Rejected:
    """Build a dead-letter record for an input of ``source``, and log why at DEBUG.

    The run that sends it says how many of each reason in one line (`ingest.runner.summary`).
    """
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    log.debug("%s: rejected (%s): %s", source, reason, detail)
    return Rejected(
        reason=reason,
        detail=detail,
        stage="ingest",
        source=source,
        payload=text[:PAYLOAD_MAX_CHARS],
    )


def read_text(source: str, raw: bytes) -> tuple[str, str] | Rejected:
    """Decode a body into (text, encoding), or return the `Rejected` that says it is empty."""
    if not raw.strip():
        return reject(source, "empty_input", "the input is empty", raw)
    return decode(raw)


def split(items: Iterable[Document | Rejected]) -> Batch:
    """Split parsed items into documents (oldest first) and rejects.

    Feeds list the newest entry first; publishing in event-time order lets the per-ticker
    windows downstream see a story unfold as it did.
    """
    batch = Batch()
    for item in items:
        if isinstance(item, Document):
            batch.documents.append(item)
        else:
            batch.rejected.append(item)
    batch.documents.sort(key=lambda doc: doc.published_at)
    return batch


def collect(source: Source, raw: bytes | None = None) -> Batch:
    """Parse one response of a source (or fetch it plainly, when ``raw`` is None)."""
    if raw is None:
        from ingest.http import read_location  # noqa: PLC0415 - avoids an import cycle

        raw = read_location(source.url)
    return split(source.parse(raw, utcnow()))
