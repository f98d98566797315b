"""What the RSS tests share: the Seeking Alpha feed, one parse, a feed around some items."""

from __future__ import annotations

from typing import Any

from ingest.rss import RssSource
from streams.records import Document, Rejected
from tests.parsing import parse_all

SA = "fixtures/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"


def parse(raw: bytes, **options: Any) -> tuple[list[Document], list[Rejected]]:
    """Parse feed bytes; every item must be a Document or a Rejected."""
    return parse_all(RssSource("test", "unused", **options), raw)


def rss(items: str, *, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    return f'{declaration}<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
