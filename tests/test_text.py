"""Markup to clean text, and tickers found in text: a string in, a string or a list out."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.errors import DecodeError
from ingest.text import clean_text, decode, find_tickers, is_symbol, load_json, unique


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<script>alert(1)</script>Hello<style>p {color: red}</style>", "Hello"),
        ("<SCRIPT>x()</SCRIPT>ok", "ok"),
        ("before<script>never closed", "before"),
        ("AT&amp;T &lt;up&gt; &#36;5", "AT&T <up> $5"),
        ("<b>AT&amp;T</b> rose &#x2014; 5%", "AT&T rose \u2014 5%"),
        ("<p>one</p><p>two</p>", "one\ntwo"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<ul><li>x</li><li>y</li></ul>", "x\ny"),
        ("<table><tr><th>Halt</th><td>06/16/2023   </td></tr></table>", "Halt\n06/16/2023"),
        ("<div><h2>Title</h2>\n\n\n<p> body  text </p></div>", "Title\nbody text"),
        ("a&nbsp;&nbsp; b\tc", "a b c"),
        ("\ufb01nance \uff21\uff22\uff23 \u2460", "finance ABC 1"),
        ("  line one \r\n\r\n\r\n line two  ", "line one\nline two"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("", ""),
    ],
)
def test_clean_text(markup: str, text: str) -> None:
    assert clean_text(markup) == text


@pytest.mark.parametrize(
    ("markup", "limit", "text"),
    [("<p>abcdef</p>", 3, "abc"), ("abcdef", 0, ""), ("abc", 10, "abc"), ("abc", None, "abc")],
)
def test_clean_text_limit(markup: str, limit: int | None, text: str) -> None:
    assert clean_text(markup, limit) == text


@settings(max_examples=50, deadline=None)
@given(markup=st.text(), limit=st.none() | st.integers(0, 50))
def test_clean_text_is_trimmed_normalised_and_bounded(markup: str, limit: int | None) -> None:
    text = clean_text(markup, limit)
    assert limit is None or len(text) <= limit
    assert "\n\n" not in text
    if limit is None:
        assert text == text.strip()
        assert unicodedata.is_normalized("NFKC", text)


@pytest.mark.parametrize(
    ("text", "tickers"),
    [
        ("Buy $AAPL and $BRK.B now", ["AAPL", "BRK.B"]),
        ("$AAPL's quarter; $AAPL again", ["AAPL"]),
        ("Apple (NASDAQ:AAPL) and IBM (NYSE: IBM)", ["AAPL", "IBM"]),
        ("NYSEARCA:SPY, OTC: ABCDE.F", ["SPY", "ABCDE.F"]),
        ("$MSFT rose; NASDAQ:AAPL fell; $MSFT", ["MSFT", "AAPL"]),
        ("costs $5, or US$100, or $20B", []),
        ("$aapl and nasdaq:aapl and Nasdaq: AAPL", []),
        ("x$AAPL $$AAPL $TOOLONG", []),
        ("", []),
    ],
)
def test_find_tickers(text: str, tickers: list[str]) -> None:
    assert find_tickers(text) == tickers


symbols = st.from_regex(r"[A-Z]{1,5}(\.[A-Z])?", fullmatch=True)


@settings(max_examples=50, deadline=None)
@given(symbol=symbols, exchange=st.sampled_from(["NASDAQ", "NYSE", "AMEX"]))
def test_find_tickers_finds_any_symbol(symbol: str, exchange: str) -> None:
    assert find_tickers(f"Shares of ${symbol} moved.") == [symbol]
    assert find_tickers(f"Acme ({exchange}: {symbol}) moved.") == [symbol]


@settings(max_examples=50, deadline=None)
@given(text=st.text())
def test_find_tickers_returns_unique_symbols(text: str) -> None:
    found = find_tickers(text)
    assert all(is_symbol(t) for t in found)
    assert found == unique(found)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("A", True),
        ("AAPL", True),
        ("GOOGL", True),
        ("BRK.B", True),
        ("ABCDEF", False),
        ("aapl", False),
        ("BRK.BB", False),
        ("BRK.", False),
        ("A1", False),
        ("", False),
        (" AAPL", False),
        ("AAPL\n", False),
    ],
)
def test_is_symbol(value: str, ok: bool) -> None:
    assert is_symbol(value) is ok


def test_unique_keeps_first_occurrence() -> None:
    assert unique(["B", "A", "B", "C", "A"]) == ["B", "A", "C"]


@pytest.mark.parametrize(
    ("encoding", "read_as"),
    [
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("utf-32", "utf-32"),
        ("utf-16-le", "utf-16-le"),
        ("utf-16-be", "utf-16-be"),
        ("utf-32-le", "utf-32-le"),
        ("utf-32-be", "utf-32-be"),
    ],
)
def test_decode_tells_unicode_encodings_apart_with_or_without_a_mark(
    encoding: str, read_as: str
) -> None:
    text = '<?xml version="1.0"?><feed>Caf\u00e9 \u2014 $AAPL \U0001f680</feed>'
    assert decode(text.encode(encoding)) == (text, read_as)


def test_decode_of_a_wide_body_cut_mid_character_keeps_the_rest() -> None:
    raw = '{"a": "b"}'.encode("utf-32")[:-2]
    text, encoding = decode(raw)
    assert encoding == "utf-32" and text.startswith('{"a": "b"')


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("9" * 5_000, "an integer of 5000 digits (at most 4300 are read)"),
        ("-" + "9" * 4_301, "an integer of 4301 digits (at most 4300 are read)"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
        ("{broken", "not JSON: Expecting property name enclosed in double quotes"),
    ],
    ids=["huge", "huge-negative", "deep", "broken"],
)
def test_load_json_refuses_with_a_reason(text: str, detail: str) -> None:
    with pytest.raises(DecodeError) as caught:
        load_json(text)
    assert caught.value.reason == "malformed_json"
    assert caught.value.detail.startswith(detail)


def test_load_json_keeps_integers_python_reads() -> None:
    assert load_json(f'{{"id": {"9" * 4_300}, "n": -12}}') == {"id": int("9" * 4_300), "n": -12}


@pytest.mark.parametrize(
    "unit", ["<a ", '<b x="', "<!--", "<?", "</", "<![", "<![CDATA["], ids=repr
)
def test_clean_text_of_unclosed_markup_is_linear_and_never_raises(unit: str) -> None:
    # html.parser rescanned the rest for each unclosed construct: 154 s on 100 KB of "<a ";
    # "<![<![" made _markupbase raise AssertionError.
    markup = "Kept $AAPL " + unit * (60_000 // len(unit))
    started = time.monotonic()
    text = clean_text(markup)
    assert text.startswith("Kept $AAPL") and time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("a<!-- <b>hidden</b> -->b", "ab"),
        ("a<![CDATA[<p>x</p>]]>b", "ab"),
        ("a<!-- never closed <p>x</p>", "a"),
        ("5 <b>bold</b> < 6 <", "5 bold < 6 <"),
        ("x<![ y>z", "x z"),
    ],
)
def test_clean_text_comments_cdata_and_stray_brackets(markup: str, text: str) -> None:
    assert clean_text(markup) == text
