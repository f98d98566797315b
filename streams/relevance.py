"""How central a ticker is to a document: the one relevance rule of surveil.

Relevance is in [0, 1] and ranks the evidence: 1.0 for a ticker named in the title (or the
filer of a filing); for one named only in the body
``0.5 + 0.25 * min(mentions, 4) / 4 + 0.15 * (1 - first_offset / len(body))`` (0.5-0.9: more
and earlier mentions score higher); 0.3 for one the linker found only in a list. An unlisted
ticker (real but unverified) gets `UNLISTED_WEIGHT` times that.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from streams.records import Document

# Unlisted symbols are real but unverified (a delisting, a rename, or a typo in a cashtag).
UNLISTED_WEIGHT = 0.5
# A ticker only listed with a document that no linker read: no evidence either way.
UNREAD = 0.5


def mention_relevance(
    *, in_title: bool, body_mentions: Collection[int], body_len: int, unlisted: bool = False
) -> float:
    """Score a ticker from where the document names it.

    Args:
        in_title: the title names it (or it is the filer of the filing).
        body_mentions: the offsets of its mentions in the body.
        body_len: the length of the body, for how early the first mention comes.
        unlisted: the symbol is missing from today's lists.
    """
    weight = UNLISTED_WEIGHT if unlisted else 1.0
    if in_title:
        return weight
    if not body_mentions:
        return round(0.3 * weight, 3)
    spread = 1 - min(body_mentions) / max(body_len, 1)
    return round(weight * (0.5 + 0.25 * min(len(body_mentions), 4) / 4 + 0.15 * spread), 3)


def relevance(ticker: str, doc: Document) -> float:
    """Return how central ``ticker`` is to ``doc``.

    The ingest linker's score (``meta["relevance"]``) wins when it has one for the ticker;
    otherwise the ticker's plain mentions are scored by `mention_relevance`, and a ticker
    the text never names gets `UNREAD`.
    """
    linked = doc.meta.get("relevance")
    if isinstance(linked, dict) and isinstance(linked.get(ticker), int | float):
        return min(1.0, max(0.0, float(linked[ticker])))
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(ticker)}(?![A-Za-z0-9])")
    in_title = pattern.search(doc.title) is not None
    body = [m.start() for m in pattern.finditer(doc.body)]
    if not in_title and not body:
        return UNREAD
    return mention_relevance(in_title=in_title, body_mentions=body, body_len=len(doc.body))
