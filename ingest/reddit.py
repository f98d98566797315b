"""Reddit comment exports as CSV (``Comment ID,Username,Comment Body,Upvotes,Date``)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ingest.base import SourceBase, read_text, reject
from ingest.posts import cashtags, encoding_meta, equity_symbols, post_text, split_post
from streams.records import Document, Rejected, stable_id

_ID, _AUTHOR, _BODY, _UPVOTES, _DATE = "comment id", "username", "comment body", "upvotes", "date"
_REQUIRED = (_ID, _BODY, _DATE)
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Markdown that is markup, not words: image and emote embeds ![img](emote|t5_2th52|4271),
# links [text](url), emphasis, headings, quote markers and backslash escapes.
# No brackets inside either part: each match attempt then stops at the next bracket, where
# "[^\]\n]+" rescanned a whole run of "[[[[" from each of its brackets (quadratic: 24 s on
# 50,000 of them).
_EMBED = re.compile(r"!\[[^\[\]\n]*\]\([^)\[\]\s]*\)")
_LINK = re.compile(r"(?<!!)\[([^\[\]\n]+)\]\([^)\[\]\s]+\)")
_EMPHASIS = re.compile(r"\*\*|__|~~|>!|!<")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*(?:>|&gt;)[ \t]?", re.MULTILINE)
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<^])")


def markdown_text(markdown: str) -> str:
    """Return the readable text of a Reddit comment: markdown and emotes removed."""
    text = _EMBED.sub("", markdown)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    return post_text(_ESCAPE.sub(r"\1", text))


class RedditCsvSource(SourceBase):
    """A CSV export of Reddit comments: one document per comment row.

    The export's dates carry no zone; they are read as UTC (``meta["published_tz_assumed"]``).
    A comment's URL needs its post's id, which the export lacks: ``url`` stays empty and the
    comment id is kept in ``meta["comment_id"]``.
    """

    kind = "reddit-csv"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse a CSV export into documents, and a `Rejected` naming each bad row."""
        read = read_text(self.name, raw)
        if isinstance(read, Rejected):
            yield read
            return
        text, encoding = read
        lines = io.StringIO(text, newline="").readlines()
        reader = csv.reader(lines)
        try:
            header = next((row for row in reader if row), [])
        except csv.Error as exc:
            yield reject(self.name, "not_a_reddit_export", f"unreadable header: {exc}", raw)
            return
        columns = {cell.strip().lower(): i for i, cell in reversed(list(enumerate(header)))}
        missing = [name for name in _REQUIRED if name not in columns]
        if missing:
            detail = f"header lacks {', '.join(missing)}: {header[:8]!r}"
            yield reject(self.name, "not_a_reddit_export", detail, raw)
            return
        row_number = 0
        while True:
            first_line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # The reader resumes on the next line, so one bad row costs only itself.
                row_number += 1
                payload = "".join(lines[first_line - 1 : reader.line_num])
                where = f"row {row_number} (line {first_line})"
                yield reject(self.name, "malformed_csv", f"{where}: {exc}", payload)
                if reader.line_num < first_line:
                    break
                continue
            if not row:
                continue
            row_number += 1
            where = f"row {row_number} (line {first_line})"
            payload = "".join(lines[first_line - 1 : reader.line_num])
            if len(row) < len(header):
                # A short row has lost cells, or shifted them: no cell can be trusted.
                detail = f"{where}: {len(row)} of {len(header)} columns"
                yield reject(self.name, "missing_field", detail, payload)
                continue
            cells = {name: row[i] for name, i in columns.items()}
            yield self._comment(where, cells, payload, fetched_at, encoding)

    def _comment(
        self,
        where: str,
        cells: dict[str, str],
        payload: str,
        fetched_at: datetime,
        encoding: str,
    ) -> Document | Rejected:
        comment_id = cells[_ID].strip()
        if not comment_id:
            return reject(self.name, "missing_field", f"{where}: no comment id", payload)
        if not cells[_BODY].strip():
            return reject(self.name, "missing_field", f"{where}: no comment body", payload)
        text = markdown_text(cells[_BODY])
        if not text:
            detail = f"{where}: no text once emotes and markup are removed"
            return reject(self.name, "empty_text", detail, payload)
        meta: dict[str, Any] = encoding_meta(encoding)
        published = fetched_at
        date = cells[_DATE].strip()
        if not date:
            meta["published_missing"] = True
        else:
            parsed = _date(date)
            if parsed is None:
                return reject(self.name, "bad_date", f"{where}: bad date {date!r}", payload)
            published, assumed = parsed
            if assumed:
                meta["published_tz_assumed"] = "UTC"
        tags = cashtags(text)
        meta |= {"comment_id": comment_id, "author": cells.get(_AUTHOR, "").strip() or None}
        meta["cashtags"] = tags
        upvotes = cells.get(_UPVOTES, "").strip()
        if re.fullmatch(r"-?\d{1,12}", upvotes):
            meta["upvotes"] = int(upvotes)
        title, body = split_post(text, self.body_max_chars)
        return Document(
            doc_id=stable_id("reddit", comment_id),
            source=self.name,
            kind="social",
            url="",
            title=title,
            body=body,
            published_at=published,
            fetched_at=fetched_at,
            tickers=tuple(equity_symbols([*tags, *self.tickers])),
            meta=meta,
        )


def _date(value: str) -> tuple[datetime, bool] | None:
    """Return the date in UTC and whether its zone was assumed, or None when unreadable."""
    try:
        parsed = datetime.strptime(value, _DATE_FORMAT)  # noqa: DTZ007 - zone set below
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), True
    try:
        return parsed.astimezone(UTC), False
    except OverflowError:
        return None
