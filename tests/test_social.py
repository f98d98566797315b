"""Every social source on what all of them share: huge integers, wide encodings, random bytes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base import Source
from ingest.stocktwits import StocktwitsSource
from ingest.text import is_symbol
from ingest.tweets import TweetsSource
from streams.records import Document, Rejected
from tests.social_helpers import (
    SOURCES,
    SocialSource,
    parse,
    tweets,
)

HUGE = "9" * 5_000


@pytest.mark.parametrize(
    ("make", "raw"),
    [
        (StocktwitsSource, f'{{"messages": [{{"id": {HUGE}, "body": "$AAPL up"}}]}}'),
        (TweetsSource, f'{{"id": {HUGE}, "text": "$AAPL up"}}'),
        (TweetsSource, f'[{{"id_str": "1", "text": "$AAPL up", "retweet_count": {HUGE}}}]'),
    ],
    ids=["stocktwits", "tweets-line", "tweets-array"],
)
def test_a_huge_json_integer_gives_a_reject_not_a_traceback(make: SocialSource, raw: str) -> None:
    docs, rejected = parse(make("t", "unused"), raw.encode())
    assert (docs, [r.reason for r in rejected]) == ([], ["malformed_json"])
    assert "5000 digits" in rejected[0].detail


def test_a_huge_integer_costs_only_its_own_line(tw_raw: bytes) -> None:
    first = tw_raw.split(b"\n")[0]
    docs, rejected = tweets(first + b"\n" + f'{{"id": {HUGE}, "text": "x"}}'.encode())
    assert len(docs) == 1
    assert [(r.reason, r.detail.split(":")[0]) for r in rejected] == [("malformed_json", "line 2")]


@pytest.mark.parametrize("make", SOURCES, ids=lambda s: s.kind)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
def test_a_wide_unicode_recording_parses_like_utf8(
    make: SocialSource, encoding: str, st_raw: bytes, tw_raw: bytes, rd_raw: bytes
) -> None:
    raw = {"stocktwits": st_raw, "tweets": tw_raw, "reddit-csv": rd_raw[:200_000]}[make.kind]
    original = parse(make("t", "unused"), raw)
    docs, rejected = parse(make("t", "unused"), raw.decode("utf-8").encode(encoding))
    assert len(docs) == len(original[0]) > 0
    assert [(d.doc_id, d.title) for d in docs] == [(d.doc_id, d.title) for d in original[0]]
    assert [r.reason for r in rejected] == [r.reason for r in original[1]]


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
def test_source_satisfies_the_protocol(make: SocialSource) -> None:
    source: Source = make("n", "file:///x", tickers=["AAPL"], body_max_chars=10)
    assert (source.name, source.url, make.kind) == ("n", "file:///x", make.kind)


def check(docs: list[Document], rejected: list[Rejected]) -> None:
    """Hold what every parse result must: symbol tickers, UTC dates, capped text."""
    for doc in docs:
        assert all(is_symbol(t) and not t.endswith(".X") for t in doc.tickers)
        assert doc.published_at.utcoffset() == timedelta(0)
        assert doc.title and len(doc.title) <= 1_000 and len(doc.body) <= 300
    assert all(r.reason and r.payload is not None for r in rejected)


FRAGMENTS = [
    b'{"response": {"status": 200}, "messages": [',
    b'{"id": 1, "body": "$AAPL &amp; $BTC.X", "created_at": "2020-04-24T18:35:11Z"}',
    b'{"id_str": "1", "text": "RT $aapl", "created_at": "Thu Jan 02 23:59:59 +0000 2014"}',
    b'"retweeted_status": {"id_str": "2"}',
    b"Comment ID,Username,Comment Body,Upvotes,Date\n",
    b'c1,u,"multi\nline ![img](emote|t5_2th52|4271)",3,2024-10-10 20:14:05\n',
    b"]}",
    b",",
    b'"',
    b"\n",
    b"\x00\xe9\xff\xfe",
]
socialish = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=12), max_size=20).map(b"".join)


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=2_000) | socialish)
def test_parse_never_raises_on_random_bytes(make: SocialSource, raw: bytes) -> None:
    check(*parse(make("fuzz", "unused", body_max_chars=300), raw))


mutation = st.tuples(
    st.sampled_from(["flip", "delete", "insert", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.binary(min_size=1, max_size=8),
)


@pytest.fixture(scope="module")
def recordings(st_raw: bytes, tw_raw: bytes, rd_raw: bytes) -> dict[str, bytes]:
    # The first 40 kB of the Reddit export hold some 300 comments: plenty, and fast.
    return {"stocktwits": st_raw, "tweets": tw_raw, "reddit-csv": rd_raw[:40_000]}


@pytest.mark.parametrize("make", SOURCES, ids=lambda cls: cls.kind)
@settings(max_examples=25, deadline=None)
@given(mutations=st.lists(mutation, min_size=1, max_size=5))
def test_parse_never_raises_on_a_mutated_recording(
    recordings: dict[str, bytes], make: SocialSource, mutations: list[tuple[str, float, bytes]]
) -> None:
    raw = recordings[make.kind]
    for op, where, data in mutations:
        at = int(where * len(raw))
        if op == "flip":
            raw = (
                raw[:at] + bytes(b ^ 0xFF for b in raw[at : at + len(data)]) + raw[at + len(data) :]
            )
        elif op == "delete":
            raw = raw[:at] + raw[at + len(data) :]
        elif op == "insert":
            raw = raw[:at] + data + raw[at:]
        else:
            raw = raw[:at]
    docs, rejected = parse(make("fuzz", "unused", body_max_chars=300), raw)
    check(docs, rejected)
    assert docs or rejected or raw.count(b"\n") <= 1
