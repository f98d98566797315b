"""What the social sources share: a post is plain text with HTML entities, read the same way
by `ingest.stocktwits`, `ingest.tweets` and `ingest.reddit`."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from ingest.text import clean_text, find_tickers, is_symbol, unique

# Posts are short, like headlines: the whole post is the title unless it is longer than this.
TITLE_MAX_CHARS = 1_000
# A title cut at a space no earlier than this keeps its last word whole.
_WORD_CUT_FROM = 800
# StockTwits writes crypto pairs as BTC.X, which looks like a class share to `is_symbol`.
_CRYPTO_SUFFIX = ".X"
# Control characters other than tab and newline are noise in text (NULs from broken exports).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def post_text(markup: str) -> str:
    """Return the visible text of a plain-text post whose HTML entities are escaped.

    Posts are not HTML: ``TSLA <100`` must survive, so ``<`` is never read as a tag. Entities
    are unescaped exactly once (``&amp;lt;`` stays ``&lt;``).
    """
    text = _CONTROL.sub("", html.unescape(markup))
    return clean_text(html.escape(text, quote=False))


def split_post(text: str, body_max_chars: int) -> tuple[str, str]:
    """Return (title, body): the whole post as title, the rest of a long post as the body.

    Args:
        text: the clean text of the post.
        body_max_chars: the body is cut to this many characters.
    """
    if len(text) <= TITLE_MAX_CHARS:
        return text, ""
    cut = max(text.rfind(sep, _WORD_CUT_FROM, TITLE_MAX_CHARS + 1) for sep in " \n")
    cut = cut if cut > 0 else TITLE_MAX_CHARS
    return text[:cut].rstrip(), text[cut:].lstrip()[:body_max_chars]


def cashtags(text: str) -> list[str]:
    """Return the ``$TICKER`` cashtags written in text, in order."""
    return [ticker for ticker in find_tickers(text) if f"${ticker}" in text]


def equity_symbols(values: Sequence[str]) -> list[str]:
    """Return the values that are equity symbols, without repeats (crypto pairs left out)."""
    return [v for v in unique(values) if is_symbol(v) and not v.endswith(_CRYPTO_SUFFIX)]


def encoding_meta(encoding: str) -> dict[str, Any]:
    """Return the meta entry that records an encoding other than UTF-8."""
    return {} if encoding in ("utf-8", "utf-8-sig") else {"encoding": encoding}
