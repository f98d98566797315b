"""RSS and Atom news feeds, from a URL or a local file, through feedparser."""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as SafeET
import feedparser

from infra.errors import DecodeError
from ingest.base import SourceBase
from ingest.safexml import parse_xml, xml_text
from ingest.text import clean_text, find_tickers, is_symbol, unique
from streams.records import Document, Rejected, stable_id

log = logging.getLogger(__name__)

# Namespaced elements that name the entry's security, as feedparser flattens them.
_SYMBOL_KEYS = ("sa_symbol", "ndaq_issuesymbol")
_SYMBOL_NAMES = frozenset({"symbol", "issuesymbol"})
_CLOSED = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)


class RssSource(SourceBase):
    """An RSS or Atom feed: one document per entry, a `Rejected` per unusable entry."""

    kind = "rss"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse feed bytes into documents and rejects."""
        # Decode first: every check below sees the text the XML parsers see.
        text = xml_text(raw)[0]
        symbols = _EntrySymbols()
        declared: list[list[str]] | None
        try:
            parse_xml(text, symbols)
            declared = symbols.found()
        except DecodeError as err:
            # Feeds never declare entities: one that does is a bomb (nested expansion) or an
            # attempt to read files or URLs (external entities). Refuse the whole input.
            yield self._refuse(err, raw)
            return
        except SafeET.ParseError:
            # Not strict XML: feedparser's lenient result is used, without declared symbols.
            declared = None
        parsed = feedparser.parse(text.encode("utf-8", "replace"))
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
            complete = min(complete, len(_CLOSED.findall(text)))
        if declared is not None and len(declared) != len(parsed.entries):
            declared = None
        for index, entry in enumerate(parsed.entries):
            if index >= complete:
                detail = f"entry {index}: the feed ends before this entry's closing tag"
                yield self._reject("truncated_entry", detail, _entry_payload(entry))
                continue
            try:
                symbols_of = declared[index] if declared is not None else _flat_symbols(entry)
                yield self._document(entry, fetched_at, symbols_of)
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


class _EntrySymbols:
    """Parser target collecting, per item or entry, the symbols its namespaced elements declare.

    feedparser keeps only the last of repeated extension elements (a Seeking Alpha item
    lists up to a dozen ``sa:stock``), so these are read from the XML itself.
    """

    def __init__(self) -> None:
        self._entries: list[list[str]] = []
        self._open: list[list[str]] = []
        self._text: list[str] | None = None

    def start(self, tag: str, attrs: Mapping[str, str]) -> None:
        local = _local(tag)
        if local in ("item", "entry"):
            self._entries.append([])
            self._open.append(self._entries[-1])
        # An element's own text is what comes before its first child.
        self._text = [] if tag.startswith("{") and local in _SYMBOL_NAMES else None

    def data(self, text: str) -> None:
        if self._text is not None:
            self._text.append(text)

    def end(self, tag: str) -> None:
        local = _local(tag)
        if self._text is not None and tag.startswith("{") and local in _SYMBOL_NAMES:
            symbol = "".join(self._text).strip().upper()
            for entry in self._open if symbol else ():
                entry.append(symbol)
        self._text = None
        if local in ("item", "entry") and self._open:
            self._open.pop()

    def close(self) -> None:
        """Finish parsing (the parser's protocol); the symbols are already kept."""

    def found(self) -> list[list[str]]:
        """Return each entry's symbols, in document order, without repeats."""
        return [unique(symbols) for symbols in self._entries]


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
