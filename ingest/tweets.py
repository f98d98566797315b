"""Twitter/X API v1.1 tweet objects, one JSON object per line (or one JSON document)."""

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

# "Thu Jan 02 23:59:59 +0000 2014"; %a and %b read English names in the C locale Python runs in.
_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"
# Twitter's code for "language undetermined": no statement, so the default stays.
_UNDETERMINED = "und"


class TweetsSource(SourceBase):
    """Tweets as the v1.1 API and its archives write them: one document per tweet.

    Input is JSON lines; a body that is one JSON document (a list of tweets, a search
    response with ``statuses``, or a single tweet) is read as well.
    """

    kind = "tweets"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse tweets into documents, and a `Rejected` naming the line of each bad one."""
        read = read_text(self.name, raw)
        if isinstance(read, Rejected):
            yield read
            return
        text, encoding = read
        whole = _whole_document(text)
        if whole is not None:
            for index, tweet in enumerate(whole, start=1):
                yield self._tweet(f"tweet {index}", tweet, fetched_at, encoding)
            return
        # Only "\n" ends a line: JSON strings may hold a raw U+2028, which splitlines() splits on.
        numbered = enumerate(text.split("\n"), start=1)
        lines = [(n, line.rstrip("\r")) for n, line in numbered if line.strip()]
        values: list[tuple[int, str, Any]] = []
        for number, line in lines:
            try:
                values.append((number, line, load_json(line)))
            except DecodeError as err:
                values.append((number, line, err))
        if all(isinstance(value, DecodeError) for _, _, value in values):
            # An HTML error page or a cut-off body: one reject, not one per line of it.
            detail = f"none of {len(values)} lines is JSON"
            if len(values) == 1:
                detail = f"line {values[0][0]}: {values[0][2].detail}"
            yield reject(self.name, "malformed_json", detail, raw)
            return
        for number, line, value in values:
            if isinstance(value, DecodeError):
                yield reject(self.name, value.reason, f"line {number}: {value.detail}", line)
            else:
                yield self._tweet(f"line {number}", value, fetched_at, encoding, line)

    def _tweet(
        self,
        where: str,
        tweet: Any,
        fetched_at: datetime,
        encoding: str,
        line: str | None = None,
    ) -> Document | Rejected:
        payload = line if line is not None else json.dumps(tweet, ensure_ascii=False)
        if not isinstance(tweet, dict):
            detail = f"{where}: a JSON {type(tweet).__name__}, not a tweet object"
            return reject(self.name, "not_a_tweet", detail, payload)
        tweet_id = _id(tweet)
        if tweet_id is None:
            return reject(self.name, "missing_field", f"{where}: no id_str or id", payload)
        raw_text = _raw_text(tweet)
        if raw_text is None:
            return reject(self.name, "missing_field", f"{where}: no text", payload)
        text = post_text(raw_text)
        if not text:
            return reject(self.name, "empty_text", f"{where}: the text is empty", payload)
        meta: dict[str, Any] = encoding_meta(encoding)
        created = tweet.get("created_at")
        at = published(created, _created_at, fetched_at, meta)
        if at is None:
            return reject(self.name, "bad_date", f"{where}: bad created_at {created!r}", payload)
        user = tweet.get("user")
        name = user.get("screen_name") if isinstance(user, dict) else None
        author = name if isinstance(name, str) and name else None
        tags = cashtags(text)
        lang = tweet.get("lang")
        meta |= {"author": author, "cashtags": tags, "lang": lang}
        dup_of = None
        original = tweet.get("retweeted_status")
        original_id = _id(original) if isinstance(original, dict) else None
        if original_id is not None:
            meta["retweet_of"] = original_id
            dup_of = stable_id("tweet", original_id)
        title, body = split_post(text, self.body_max_chars)
        url = f"https://twitter.com/{author}/status/{tweet_id}" if author else ""
        language = lang if isinstance(lang, str) and lang and lang != _UNDETERMINED else "en"
        return Document(
            doc_id=stable_id("tweet", tweet_id),
            source=self.name,
            kind="social",
            url=url,
            title=title,
            body=body,
            published_at=at,
            fetched_at=fetched_at,
            tickers=tuple(equity_symbols([*_symbols(tweet), *tags, *self.tickers])),
            language=language,
            meta=meta,
            dup_of=dup_of,
        )


def _whole_document(text: str) -> list[Any] | None:
    """Return the tweets of a body that is one JSON document, or None for JSON lines."""
    start = text.lstrip()[:1]
    if start not in ("[", "{"):
        return None
    try:
        value = load_json(text)
    except DecodeError:
        return None
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and isinstance(value.get("statuses"), list):
        return list(value["statuses"])
    # A single tweet on one line is read line by line, with its line number.
    return None if "\n" not in text.strip() else [value]


def _id(tweet: dict[str, Any]) -> str | None:
    id_str = tweet.get("id_str")
    if isinstance(id_str, str) and id_str.strip():
        return id_str.strip()
    # The numeric id loses precision in JavaScript, not in Python: a fallback, not the rule.
    number = tweet.get("id")
    return str(number) if isinstance(number, int) and not isinstance(number, bool) else None


def _raw_text(tweet: dict[str, Any]) -> str | None:
    extended = tweet.get("extended_tweet")
    candidates = [
        extended.get("full_text") if isinstance(extended, dict) else None,
        tweet.get("full_text"),
        tweet.get("text"),
    ]
    return next((c for c in candidates if isinstance(c, str)), None)


def _symbols(tweet: dict[str, Any]) -> list[str]:
    entities = tweet.get("entities")
    listed = entities.get("symbols") if isinstance(entities, dict) else None
    if not isinstance(listed, list):
        return []
    return [
        s["text"].upper() for s in listed if isinstance(s, dict) and isinstance(s.get("text"), str)
    ]


def _created_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), _CREATED_AT).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
