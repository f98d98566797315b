"""StockTwits API v2 symbol streams: one document per message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from infra.errors import DecodeError
from ingest.base import SourceBase, published, read_text, reject
from ingest.posts import cashtags, encoding_meta, equity_symbols, post_text, split_post
from ingest.text import load_json
from streams.records import Document, Rejected, stable_id


def read_json(source: str, raw: bytes) -> tuple[Any, str] | Rejected:
    """Decode and parse a JSON body, or return the `Rejected` that says why it is none.

    Args:
        source: the source's name, for the reject.
        raw: the response body.
    """
    read = read_text(source, raw)
    if isinstance(read, Rejected):
        return read
    text, encoding = read
    try:
        return load_json(text), encoding
    except DecodeError as err:
        return reject(source, err.reason, err.detail, raw)


class StocktwitsSource(SourceBase):
    """A StockTwits ``streams/symbol`` response: one document per message."""

    kind = "stocktwits"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse a stream response into documents and rejects."""
        read = read_json(self.name, raw)
        if isinstance(read, Rejected):
            yield read
            return
        stream, encoding = read
        if not isinstance(stream, dict):
            kind = type(stream).__name__
            yield self._reject("not_a_stocktwits_stream", f"a JSON {kind}, not an object", raw)
            return
        response = stream.get("response")
        status = response.get("status") if isinstance(response, dict) else None
        if status is not None and str(status) != "200":
            yield self._reject("api_error", f"status {status}: {_errors(stream)}", raw)
            return
        messages = stream.get("messages")
        if not isinstance(messages, list):
            detail = "no messages list in the response"
            yield self._reject("not_a_stocktwits_stream", detail, raw)
            return
        for index, message in enumerate(messages):
            yield self._message(index, message, fetched_at, encoding)

    def _message(
        self, index: int, message: Any, fetched_at: datetime, encoding: str
    ) -> Document | Rejected:
        payload = json.dumps(message, ensure_ascii=False, default=str)
        if not isinstance(message, dict):
            detail = f"message {index}: a JSON {type(message).__name__}, not an object"
            return self._reject("missing_field", detail, payload)
        message_id = message.get("id")
        body = message.get("body")
        if not isinstance(message_id, int | str) or isinstance(message_id, bool) or not message_id:
            return self._reject("missing_field", f"message {index}: no id", payload)
        if not isinstance(body, str):
            return self._reject("missing_field", f"message {index}: no body", payload)
        text = post_text(body)
        if not text:
            return self._reject("empty_text", f"message {index}: the body has no text", payload)
        meta: dict[str, Any] = encoding_meta(encoding)
        created = message.get("created_at")
        at = published(created, _timestamp, fetched_at, meta)
        if at is None:
            detail = f"message {index}: bad created_at {created!r}"
            return self._reject("bad_date", detail, payload)
        author = _string(message.get("user"), "username")
        listed = message.get("symbols")
        symbols = [
            s["symbol"].upper()
            for s in (listed if isinstance(listed, list) else [])
            if isinstance(s, dict) and isinstance(s.get("symbol"), str)
        ]
        tags = cashtags(text)
        meta |= {"author": author, "cashtags": tags, "symbols": symbols}
        meta["user_sentiment"] = _sentiment(message.get("entities"))
        likes = message.get("likes")
        if isinstance(likes, dict) and isinstance(likes.get("total"), int):
            meta["likes"] = likes["total"]
        title, rest = split_post(text, self.body_max_chars)
        url = f"https://stocktwits.com/{author}/message/{message_id}" if author else ""
        return Document(
            doc_id=stable_id("stocktwits", str(message_id)),
            source=self.name,
            kind="social",
            url=url,
            title=title,
            body=rest,
            published_at=at,
            fetched_at=fetched_at,
            tickers=tuple(equity_symbols([*symbols, *tags, *self.tickers])),
            meta=meta,
        )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The API writes UTC with a Z; a stamp without a zone is read as UTC too.
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00, before datetime.min in UTC
        return None


def _string(value: Any, key: str) -> str | None:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) and found else None


def _sentiment(entities: Any) -> str | None:
    sentiment = entities.get("sentiment") if isinstance(entities, dict) else None
    basic = sentiment.get("basic") if isinstance(sentiment, dict) else None
    return basic.lower() if isinstance(basic, str) and basic else None


def _errors(stream: dict[str, Any]) -> str:
    errors = stream.get("errors")
    if isinstance(errors, list):
        return "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
    return "no error message"
