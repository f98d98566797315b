"""Linking documents to the tickers they are about.

`Linker` validates the tickers a document declares and finds the ones its text names, with
the symbols, aliases and names of an `ingest.universe.Universe`.

Evidence, strongest first (``meta["linked_by"]`` names the first that applies):

- ``cik``: the filer CIK (``meta["cik"]``, ``meta["ciks"]``) -> its primary ticker, the first
  listed for that CIK in company_tickers.json (SEC lists the most traded class first:
  BRK-B before BRK-A, GOOGL before GOOG).
- ``declared``: the document's own ``tickers`` (from the feed or API), if known.
- ``cashtag`` ($AAPL) and ``exchange`` (NASDAQ:AAPL, (NYSE: IBM)) anywhere in the text.
- ``name``: a company name (S&P 500 names; SEC titles of two words or more), written
  capitalised; names that are common words (Target, Visa) need a suffix (Target Corp.).
- ``symbol``: a bare upper-case symbol in the title (or in a short untitled post), when it is
  3 letters or more, no common word or acronym (`COMMON_WORDS`), and the text isn't shouting.

A declared, cashtag or exchange symbol that is well formed (`is_symbol`) but missing from
today's lists is kept as *unlisted* (``meta["unlisted"]``): old feeds name delisted and
renamed tickers (TWTR, CELG, SIVB, RHT) that a backtest needs. Only a declared symbol that is
no ticker at all lands in `Linked.unknown`. Bare symbols and names link only when listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ingest.text import CASHTAG, is_symbol, unique
from ingest.universe import SUFFIXES, TOKEN, Universe, canonical_variant
from streams.records import Document
from streams.relevance import mention_relevance

_EXCHANGE = re.compile(
    r"\b(?i:nasdaq|nyse|nysearca|nyse\s?american|nysemkt|amex|bats|cboe|otc|otcqx|otcqb)"
    r"\s*:\s*([A-Z]{1,5}(?:\.[A-Z])?)\b"
)
_BARE = re.compile(r"(?<![\w$./&-])([A-Z]{2,5}(?:\.[A-Z])?)(?![\w&]|\.[A-Za-z]|-\w)")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")

# Words that are tickers but mean something else when written bare (cashtag them instead).
_STREETS = frozenset(
    "street st avenue ave road rd boulevard blvd drive lane way place square plaza".split()
)
COMMON_WORDS = frozenset(
    """
    ACT ADD AGO AIN AIR ALL ALSO ALT AMP AND ANY APP ARE AREA ARM ART ASK ATH ATM AWAY BACK BAD
    BAND BANK BAR BASE BEAT BEST BET BIG BILL BIRD BIT BOLD BOOM BOX BRO BROS BTC BULL BUY CAKE
    CALL CAN CAR CARE CARS CASH CAT CEO CFO CHAT CHEF CIO CODE COLD COM COOL COPY CORN CPI CTO
    CUBE CUT DAY DECK DIM DIV DOC DOG DON DOOR DOW DRIVE DTD DTE DUE EARN EAT EDIT EDM ELON ELSE
    EOD EPS ETF ETH EVER EYE FACT FAN FAST FAT FDA FED FEED FIVE FIX FLAG FLY FOMC FOR FORM FOUR
    FREE FUN FUND GAIN GAME GAP GDP GIVE GLAD GOLD GOOD GPS GRAY GTA HACK HARD HAS HEAR HELP HERE
    HIDE HIGH HIT HOLD HOME HOPE HOT HOUR HUGE IMG IMO IPO IRS ITM JACK JOB JOBS JUST KEY KIDS
    KNOW LAND LAW LAZY LEAF LIFE LINE LINK LIVE LMAO LOL LOOP LOT LOVE LOW LUCK MADE MAIN MAN
    MANY MASS MAX MEN MIN MIND MOM MOON MORE MOST MOVE MUST NET NEW NEWS NEXT NFP NGL NICE NOTE
    NOW NSA NYC ODDS OIL ONE OPEN OTM OUT OWN PAR PARK PAY PDT PEAK PETS PICK PIN PLAY PLUS POST
    PPI PRE PST PUMP PUSH RACE RATE REAL RENT RIDE RIP ROBO ROCK ROE ROI RULE RUN SAFE SAN SAVE
    SAY SEAT SEC SEE SEEM SELF SHE SHIP SHOP SIX SIZE SKY SMH SNOW SOS SPOT STAR STAY SUB SUN
    SURE TALK TAX TBH TEAM TECH TELL TEN THE THO TILL TIME TIP TOP TRUE TURN TWO TXT USA USD USE
    UTF VERY WAIT WANT WAY WEEK WELL WEN WFH WHEN WHO WILD WIN WOOF WOW WSB WTF WWW XSD YALL YEAR
    YOLO YOU YTD ZIP ZONE CORP INC LTD PLC LLC GROUP HOLDINGS TRUST ITEM FORM
    """.split()
)
_CONNECTORS = frozenset({"of", "and", "the", "de", "s"})


@dataclass(frozen=True)
class Linked:
    """A linked document, the malformed symbols it declared and the unlisted ones it kept."""

    doc: Document
    unknown: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()


@dataclass
class _Evidence:
    by: dict[str, str] = field(default_factory=dict)
    title: dict[str, int] = field(default_factory=dict)
    body: dict[str, set[int]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    def link(self, ticker: str, how: str) -> None:
        self.by.setdefault(ticker, how)


class Linker:
    """Link documents to the tickers they are about, with a relevance for each.

    Relevance is `streams.relevance.mention_relevance` of the evidence: the filer of a
    CIK-linked filing counts as named in the title. An unlisted ticker gets half of what a
    listed one gets on the same evidence, so it never outranks it.

    Args:
        universe: the known symbols and names.
    """

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        sizes: dict[str, set[int]] = {}
        for name in universe.names:
            sizes.setdefault(name.split(" ", 1)[0], set()).add(name.count(" ") + 1)
        # Per first word, the word counts of the names it starts, longest first.
        self._sizes = {word: sorted(n, reverse=True) for word, n in sizes.items()}

    def link(self, doc: Document) -> Linked:
        """Return the document with its linked tickers, relevance and evidence in ``meta``."""
        ev = _Evidence()
        uni = self.universe
        for key in ("cik", "ciks"):
            value = doc.meta.get(key)
            for cik in value if isinstance(value, list) else [value]:
                if isinstance(cik, int) and (ticker := uni.primary(cik)) is not None:
                    ev.link(ticker, "cik")
        for symbol in doc.tickers:
            self._explicit(ev, symbol, "declared")
        # Bare symbols count in a title, or in a short post that has none (a tweet, a comment);
        # never in a filing, whose upper-case titles name the company and its CIK links it.
        title_bare = doc.kind != "filing"
        body_bare = title_bare and not doc.title and len(doc.body) <= 500
        for part, text, bare in (("title", doc.title, title_bare), ("body", doc.body, body_bare)):
            for ticker, how, pos in self._mentions(ev, text, bare=bare):
                if how:
                    ev.link(ticker, how)
                if part == "title":
                    ev.title.setdefault(ticker, pos)
                else:
                    ev.body.setdefault(ticker, set()).add(pos)
        relevance = {
            t: mention_relevance(
                in_title=ev.by[t] == "cik" or t in ev.title,
                body_mentions=ev.body.get(t, ()),
                body_len=len(doc.body),
                unlisted=t in ev.unlisted,
            )
            for t in ev.by
        }
        order = sorted(ev.by, key=lambda t: -relevance[t])
        meta = {
            **doc.meta,
            "relevance": {t: relevance[t] for t in order},
            "linked_by": {t: ev.by[t] for t in order},
        }
        unlisted = tuple(t for t in order if t in ev.unlisted)
        if unlisted:
            meta["unlisted"] = list(unlisted)
        new = doc.model_copy(update={"tickers": tuple(order), "meta": meta})
        return Linked(doc=new, unknown=tuple(unique(ev.unknown)), unlisted=unlisted)

    def _explicit(self, ev: _Evidence, symbol: str, how: str) -> str | None:
        ticker = self.universe.canonical(symbol)
        if ticker is None:
            ticker = canonical_variant(symbol)
            if not is_symbol(ticker):
                ev.unknown.append(ticker)
                return None
            if ticker not in ev.unlisted:
                ev.unlisted.append(ticker)
        ev.link(ticker, how)
        return ticker

    def _mentions(self, ev: _Evidence, text: str, *, bare: bool) -> Iterator[tuple[str, str, int]]:
        """Yield (ticker, how it links or "" when it only counts as a mention, offset)."""
        if not text:
            return
        for m in CASHTAG.finditer(text):
            raw = m.group(1)
            if raw.isupper():
                ticker = self._explicit(ev, raw, "cashtag")
            else:  # $tsla: link only when known, never report lower-case noise as unknown
                ticker = self.universe.canonical(raw)
            if ticker:
                yield ticker, "cashtag", m.start()
        for m in _EXCHANGE.finditer(text):
            if ticker := self._explicit(ev, m.group(1), "exchange"):
                yield ticker, "exchange", m.start()
        yield from self._names(text)
        shouting = False
        if bare:
            upper, lower = len(_UPPER.findall(text)), len(_LOWER.findall(text))
            shouting = upper + lower >= 6 and upper > 0.6 * (upper + lower)
        for m in _BARE.finditer(text):
            ticker = self.universe.canonical(m.group(1))
            if ticker is None and canonical_variant(m.group(1)) in ev.unlisted:
                # A mention of a symbol the document declared: it counts, it never links.
                yield canonical_variant(m.group(1)), "", m.start()
                continue
            if ticker is None or m.group(1) in COMMON_WORDS:
                continue
            strong = bare and not shouting and len(m.group(1).split(".")[0]) >= 3
            if strong or ticker in ev.by:
                yield ticker, "symbol" if strong else "", m.start()

    def _names(self, text: str) -> Iterator[tuple[str, str, int]]:
        tokens = list(TOKEN.finditer(text))
        lowered = [t.group().lower() for t in tokens]
        names, i = self.universe.names, 0
        while i < len(tokens):
            for size in self._sizes.get(lowered[i], ()):
                if i + size > len(tokens):
                    continue
                key = " ".join(lowered[i : i + size])
                if key in names and self._written_as_name(text, tokens, i, size, key):
                    yield names[key], "name", tokens[i].start()
                    i += size - 1
                    break
            i += 1

    def _written_as_name(
        self, text: str, tokens: list[re.Match[str]], i: int, size: int, key: str
    ) -> bool:
        for j in range(i, i + size):
            word = tokens[j].group()
            if word.lower() not in _CONNECTORS and not any(c.isupper() for c in word[:2]):
                return False
            if j > i and (
                len(gap := text[tokens[j - 1].end() : tokens[j].start()]) > 3 or "\n" in gap
            ):
                return False
        if key in self.universe.upper_only and not tokens[i].group().isupper():
            return False
        after = i + size
        last = tokens[after].group() if after < len(tokens) else ""
        if {last.lower(), tokens[after - 1].group().lower()} & _STREETS:
            return False  # "220 West Main Street" is an address, not Main Street Capital
        if key in self.universe.suffix_only:
            after = i + size
            return after < len(tokens) and tokens[after].group().lower() in SUFFIXES
        return True
