"""RSS parsing never raises, whatever the bytes: random input and mutated feeds."""

from __future__ import annotations

import feedparser
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.text import is_symbol
from tests.rss_helpers import parse

# -- Properties: parse never raises ---------------------------------------------------------

FRAGMENTS = [
    b'<?xml version="1.0"?>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?>',
    b'<?xml version="1.0" encoding="utf-16"?>',
    b'<?xml version="1.0" encoding="bogus"?>',
    b'<rss version="2.0">',
    b"</rss>",
    b"<channel>",
    b"</channel>",
    b"<item>",
    b"</item>",
    b"<title>",
    b"</title>",
    b"<description>",
    b"</description>",
    b"<![CDATA[<table><tr><td>",
    b"]]>",
    b"<guid>",
    b"</guid>",
    b"<pubDate>Thu, 26 Oct 2017 21:54:10 -0400</pubDate>",
    b"<pubDate>yesterday</pubDate>",
    b'<feed xmlns="http://www.w3.org/2005/Atom">',
    b"<entry>",
    b"</entry>",
    b"<updated>2026-01-12T11:27:39-05:00</updated>",
    b'<sa:symbol xmlns:sa="https://seekingalpha.com/api/1.0">MSFT</sa:symbol>',
    b"<html><body>",
    b'<!DOCTYPE x [<!ENTITY e "eee">]>',
    b"&e;&amp;&#xE9;&bogus;",
    b"$AAPL NYSE: IBM",
    b"\xe9\xff\xfe\x00",
]
feedish = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=30).map(b"".join)


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=2_000) | feedish)
def test_parse_never_raises_on_random_bytes(raw: bytes) -> None:
    docs, rejected = parse(raw)
    assert all(is_symbol(t) for doc in docs for t in doc.tickers)
    if not docs and not rejected:
        # Nothing at all only for a well-formed feed without entries.
        parsed = feedparser.parse(raw)
        assert parsed.get("version") and not parsed.bozo and not parsed.entries


mutation = st.tuples(
    st.sampled_from(["delete", "insert", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.binary(min_size=1, max_size=8),
)


@settings(max_examples=50, deadline=None)
@given(mutations=st.lists(mutation, min_size=1, max_size=5))
def test_parse_never_raises_on_a_mutated_feed(
    sa_raw: bytes, mutations: list[tuple[str, float, bytes]]
) -> None:
    raw = sa_raw
    for op, where, data in mutations:
        at = int(where * len(raw))
        if op == "delete":
            raw = raw[:at] + raw[at + len(data) :]
        elif op == "insert":
            raw = raw[:at] + data + raw[at:]
        else:
            raw = raw[:at]
    docs, rejected = parse(raw)
    assert docs or rejected


def test_a_feed_cut_off_mid_item_rejects_the_half_written_item(sa_raw: bytes) -> None:
    docs, rejected = parse(sa_raw[: len(sa_raw) // 2])
    assert len(docs) == sa_raw[: len(sa_raw) // 2].count(b"</item>") == 13
    assert [r.reason for r in rejected] == ["truncated_entry"]
    assert "closing tag" in rejected[0].detail
