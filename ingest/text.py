"""Decode bytes, turn markup into clean text, and find tickers in it."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser

from charset_normalizer import from_bytes

_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "table"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

# $AAPL, $BRK.B ; NASDAQ:AAPL, (NYSE: IBM)
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Z]{1,5}(?:\.[A-Z])?)\b")
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


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Single-byte Latin code pages tell each other apart badly; Western (cp1252) is likelier here.
_LATIN = frozenset(
    {"cp1250", "cp1252", "cp1254", "latin_1", "iso8859_2", "iso8859_9", "iso8859_15", "mac_roman"}
)
_DECLARED = re.compile(rb"""(?:encoding|charset)\s*=\s*["']?([A-Za-z0-9._-]+)""")


def decode(raw: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return the text of ``raw`` and the encoding it was read with.

    The order: a byte-order mark, then UTF-8, then the encoding the body or the
    Content-Type declares, then detection (charset-normalizer), then cp1252, which
    decodes any byte. A wrong declaration never wins over valid UTF-8.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
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


def clean_text(markup: str, limit: int | None = None) -> str:
    """Return the visible text of an HTML fragment, normalised (NFKC) and cut to ``limit``."""
    if "<" in markup:
        parser = _TextExtractor()
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
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
    found = [m.group(1) for m in _CASHTAG.finditer(text)]
    found += [m.group(1) for m in _EXCHANGE.finditer(text)]
    return unique(found)


def unique(values: Iterable[str]) -> list[str]:
    """Return the values without repeats, first occurrence first."""
    return list(dict.fromkeys(values))
