"""Turn markup into clean text, and find tickers in it."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser

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
