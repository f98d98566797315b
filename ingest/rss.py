"""RSS and Atom news feeds, from a URL or a local file, through feedparser."""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as SafeET
import feedparser
from defusedxml import DefusedXmlException

from infra.errors import DecodeError
from ingest.base import SourceBase
from ingest.text import clean_text, find_tickers, is_symbol, unique
from streams.records import Document, Rejected, stable_id, utcnow

log = logging.getLogger(__name__)

# Namespaced elements that name the entry's security, as feedparser flattens them.
_SYMBOL_KEYS = ("sa_symbol", "ndaq_issuesymbol")
_SYMBOL_NAMES = frozenset({"symbol", "issuesymbol"})
_ENTITY = re.compile(rb"<!ENTITY\s+%?\s*[\w.-]+\s+(SYSTEM|PUBLIC)?[^>]*>", re.IGNORECASE)
_CLOSED = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)


class RssSource(SourceBase):
    """An RSS or Atom feed: one document per entry, a `Rejected` per unusable entry.

    Args:
        name: the source's name, stored with every document.
        url: an http(s) URL, a file:// URL or a local path.
        tickers: tickers every document of this feed is about (e.g. a per-symbol feed).
        body_max_chars: bodies are cut to this many characters.
    """

    kind = "rss"

    def parse(
        self, raw: bytes, fetched_at: datetime | None = None
    ) -> Iterator[Document | Rejected]:
        """Parse feed bytes into documents and rejects."""
        fetched_at = fetched_at or utcnow()
        entity = _ENTITY.search(raw[:65_536])
        if entity is not None:
            # Feeds never declare entities: one that does is a bomb (nested expansion) or an
            # attempt to read files or URLs (external entities). Refuse the whole input.
            external = entity.group(1) is not None
            reason = "unsafe_xml" if external else "xml_bomb"
            detail = "external entity declared" if external else "entity declarations refused"
            yield self._reject(reason, f"{detail}: {entity.group(0)[:120]!r}", raw)
            return
        parsed = feedparser.parse(raw)
        if parsed.bozo and not parsed.entries:
            exc = parsed.get("bozo_exception")
            yield self._reject("malformed_feed", f"not a usable RSS/Atom feed: {exc}", raw)
            return
        if not parsed.entries and not parsed.get("version"):
            # Well-formed markup that is no feed (an HTML error page, an empty body).
            yield self._reject("not_a_feed", "no RSS or Atom feed in the input", raw)
            return
        complete = len(parsed.entries)
        if parsed.bozo:
            log.warning("%s: feed parsed with errors: %s", self.name, parsed.get("bozo_exception"))
            # A feed cut off mid-item still gives that item, half written: keep only the
            # entries whose closing tag arrived.
            complete = min(complete, len(_CLOSED.findall(raw)))
        declared = declared_symbols(raw)
        if declared is not None and len(declared) != len(parsed.entries):
            declared = None
        for index, entry in enumerate(parsed.entries):
            if index >= complete:
                detail = f"entry {index}: the feed ends before this entry's closing tag"
                yield self._reject("truncated_entry", detail, _entry_payload(entry))
                continue
            try:
                symbols = declared[index] if declared is not None else _flat_symbols(entry)
                yield self._document(entry, fetched_at, symbols)
            except DecodeError as err:
                detail = f"entry {index}: {err.detail}"
                yield self._reject(err.reason, detail, _entry_payload(entry))

    def _document(self, entry: Any, fetched_at: datetime, declared: list[str]) -> Document:
        title = clean_text(entry.get("title", ""), 1_000)
        summary = entry.get("summary") or ""
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        body = clean_text(summary, self.body_max_chars)
        link = entry.get("link", "") or ""
        if not title and not body:
            reason, detail = "empty_entry", "entry has neither a title nor a body"
            raise DecodeError(reason, detail)
        meta: dict[str, Any] = {}
        published = _entry_time(entry)
        if published is None:
            published = fetched_at
            meta["published_missing"] = True
        source_id = entry.get("id") or link
        if source_id:
            doc_id = stable_id("id", source_id)
        else:
            # Feeds such as Nasdaq trade halts carry neither guid nor link: the content is the id.
            doc_id = stable_id("content", self.name, title, body, published.isoformat())
            meta["id_derived"] = True
        tickers = unique([*declared, *self.tickers, *find_tickers(f"{title}\n{body}")])
        tickers = [t for t in tickers if is_symbol(t)]
        if entry.get("author") or entry.get("sa_author_name"):
            meta["author"] = entry.get("author") or entry.get("sa_author_name")
        return Document(
            doc_id=doc_id,
            source=self.name,
            kind="news",
            url=link,
            title=title,
            body=body,
            published_at=published,
            fetched_at=fetched_at,
            tickers=tuple(tickers),
            meta=meta,
        )


def declared_symbols(raw: bytes) -> list[list[str]] | None:
    """Return, per item or entry, the symbols its namespaced elements declare.

    feedparser keeps only the last of repeated extension elements (a Seeking Alpha item
    lists up to a dozen ``sa:stock``), so these are read from the XML itself; None when the
    XML does not parse strictly (feedparser's lenient result is used then).
    """
    try:
        root = SafeET.fromstring(raw)
    except (SafeET.ParseError, DefusedXmlException, ValueError, LookupError):
        return None
    found = []
    for element in root.iter():
        if _local(element.tag) not in ("item", "entry"):
            continue
        symbols = [
            (child.text or "").strip().upper()
            for child in element.iter()
            if child.tag.startswith("{") and _local(child.tag) in _SYMBOL_NAMES and child.text
        ]
        found.append(unique(symbols))
    return found


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _flat_symbols(entry: Any) -> list[str]:
    return [str(entry[k]).strip().upper() for k in _SYMBOL_KEYS if entry.get(k)]


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() maps updated to published with a warning.
        value = dict.get(entry, key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _entry_payload(entry: Any) -> str:
    keys = ("id", "link", "title", "published", "updated", "summary")
    return repr({k: dict.get(entry, k) for k in keys if dict.get(entry, k) is not None})
