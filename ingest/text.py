"""Decode bytes, read JSON safely, turn markup into clean text, and find tickers in it."""

from __future__ import annotations

import html
import json
import re
import sys
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser
from typing import Any

from charset_normalizer import from_bytes

from infra.errors import DecodeError

_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "table"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# A "<" with another "<" (or the end) before any ">" opens no tag. Linear: each lookahead
# stops at the next bracket.
_STRAY_LT = re.compile(r"<(?=[^<>]*(?:<|\Z))")
_ANY_TAG = re.compile(r"<[^<>]*>")
# What html.parser shows nothing of; dropped before it, in one pass.
_HIDDEN = re.compile(r"<!--|<!\[CDATA\[")

# $AAPL, $BRK.B (also $tsla: only an upper-case cashtag declares a ticker); NASDAQ:AAPL, (NYSE: IBM)
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,5}(?:\.[A-Za-z])?)(?![\w])")
_EXCHANGE = re.compile(
    r"\b(?:NASDAQ|NYSE|NYSEARCA|NYSEAMERICAN|AMEX|BATS|OTC)\s*:\s*([A-Z]{1,5}(?:\.[A-Z])?)\b"
)
_SYMBOL = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z])?$")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


# UTF-32 before UTF-16: the UTF-32LE mark starts with the UTF-16LE one.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# XML, JSON and CSV open with an ASCII character, so where the NULs of the first four bytes
# fall tells UTF-32 and UTF-16 without a mark, and their byte order (XML 1.0 appendix F,
# RFC 4627 section 3). Valid UTF-8 as well, so this comes before the UTF-8 attempt.
_WIDE = (
    (re.compile(rb"[\x01-\x7f]\x00\x00\x00"), "utf-32-le"),
    (re.compile(rb"\x00\x00\x00[\x01-\x7f]"), "utf-32-be"),
    (re.compile(rb"[\x01-\x7f]\x00[\x01-\x7f]\x00"), "utf-16-le"),
    (re.compile(rb"\x00[\x01-\x7f]\x00[\x01-\x7f]"), "utf-16-be"),
)
# Single-byte Latin code pages tell each other apart badly; Western (cp1252) is likelier here.
_LATIN = frozenset(
    {"cp1250", "cp1252", "cp1254", "latin_1", "iso8859_2", "iso8859_9", "iso8859_15", "mac_roman"}
)
_DECLARED = re.compile(rb"""(?:encoding|charset)\s*=\s*["']?([A-Za-z0-9._-]+)""")


def decode(raw: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return the text of ``raw`` and the encoding it was read with.

    The order: a byte-order mark, then the NUL pattern of UTF-16/32 without one, then
    UTF-8, then the encoding the body or the Content-Type declares, then detection
    (charset-normalizer), then cp1252, which decodes any byte. A wrong declaration never
    wins over valid UTF-8.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding, "replace"), encoding
    for pattern, encoding in _WIDE:
        if pattern.match(raw):
            # A body cut mid-character keeps the rest: the cut shows as U+FFFD.
            return raw.decode(encoding, "replace"), encoding
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = _DECLARED.search(raw[:1024])
    for name in (declared, found.group(1).decode("ascii") if found else None):
        if not name:
            continue
        try:
            return raw.decode(name), name.lower()
        except (LookupError, UnicodeDecodeError):
            continue
    # Without NUL bytes the input is no UTF-16/32; detection on a few bytes is a guess.
    wide = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le"]
    best = (
        from_bytes(raw[:65_536], cp_exclusion=wide if b"\x00" not in raw else None).best()
        if len(raw) >= 64
        else None
    )
    if best is not None and best.encoding not in _LATIN:
        try:
            return raw.decode(best.encoding), best.encoding
        except (LookupError, UnicodeDecodeError):
            pass
    return raw.decode("cp1252", "replace"), "cp1252"


class _LongInteger(ValueError):
    """A JSON integer longer than Python converts to int."""


def _json_int(digits: str) -> int:
    # int() refuses (ValueError) past sys.get_int_max_str_digits() to bound its quadratic
    # cost; saying so here gives a reject a person can read instead of a traceback.
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        msg = f"an integer of {len(digits.lstrip('-'))} digits (at most {limit} are read)"
        raise _LongInteger(msg)
    return int(digits)


def load_json(text: str) -> Any:
    """Parse JSON text.

    Raises:
        DecodeError: ``malformed_json``: not JSON, nested deeper than Python recurses, or
            holding an integer longer than Python converts (``sys.get_int_max_str_digits``).
    """
    try:
        return json.loads(text, parse_int=_json_int)
    except _LongInteger as exc:
        reason, msg = "malformed_json", str(exc)
        raise DecodeError(reason, msg) from exc
    except RecursionError as exc:
        reason, msg = "malformed_json", "nested too deeply to read"
        raise DecodeError(reason, msg) from exc
    except ValueError as exc:
        reason, msg = "malformed_json", f"not JSON: {exc}"
        raise DecodeError(reason, msg) from exc


def _tags_only(markup: str) -> str:
    """Return markup whose every ``<`` opens a closed tag: comments and CDATA dropped.

    html.parser rescans the rest of the input for each construct that never closes (a
    ``<a `` or ``<!--`` without its ``>``), minutes on a few hundred kilobytes of them.
    """
    parts, kept = [], 0
    while (found := _HIDDEN.search(markup, kept)) is not None:
        parts.append(markup[kept : found.start()])
        closer = "-->" if found.group(0) == "<!--" else "]]>"
        end = markup.find(closer, found.end())
        # An unclosed comment runs to the end, as browsers read it.
        kept = len(markup) if end < 0 else end + len(closer)
    parts.append(markup[kept:])
    return _STRAY_LT.sub("&lt;", "".join(parts))


def _strip_tags(markup: str) -> str:
    return html.unescape(_ANY_TAG.sub(" ", markup))


def clean_text(markup: str, limit: int | None = None) -> str:
    """Return the visible text of an HTML fragment, normalised (NFKC) and cut to ``limit``."""
    if "<" in markup:
        parser = _TextExtractor()
        try:
            parser.feed(_tags_only(markup))
            parser.close()
            text = "".join(parser.parts)
        except AssertionError:
            # _markupbase asserts on some bad declarations ("<![ x>"): strip tags plainly.
            text = _strip_tags(markup)
    else:
        text = html.unescape(markup)
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    text = "\n".join(line.strip() for line in text.split("\n")).strip()
    return text[:limit] if limit is not None else text


def is_symbol(value: str) -> bool:
    """Whether a string looks like an exchange ticker symbol (1-5 letters, optional class)."""
    return bool(_SYMBOL.fullmatch(value))


def find_tickers(text: str) -> list[str]:
    """Return tickers written unambiguously in text: cashtags and exchange prefixes, in order."""
    found = [m.group(1) for m in CASHTAG.finditer(text) if m.group(1).isupper()]
    found += [m.group(1) for m in _EXCHANGE.finditer(text)]
    return unique(found)


def unique(values: Iterable[str]) -> list[str]:
    """Return the values without repeats, first occurrence first."""
    return list(dict.fromkeys(values))
