"""The symbol universe, and linking of documents to the tickers they are about.

`Universe` holds the known symbols (Nasdaq Trader's nasdaqlisted and otherlisted files, the
S&P 500 list, SEC company_tickers.json), CIK -> tickers and company names -> ticker.
`Linker` validates the tickers a document declares and finds the ones its text names.

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

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import ConfigError
from ingest.text import CASHTAG, decode, is_symbol, unique
from streams.records import Document
from streams.relevance import mention_relevance

_NASDAQ_COLUMNS = ("Symbol", "Security Name", "Test Issue")
_OTHER_COLUMNS = ("ACT Symbol", "Security Name", "Exchange", "Test Issue")
_CLASS_VARIANT = re.compile(r"^([A-Z]{1,5})[ ./-]([A-Z])$")
_EXCHANGE = re.compile(
    r"\b(?i:nasdaq|nyse|nysearca|nyse\s?american|nysemkt|amex|bats|cboe|otc|otcqx|otcqb)"
    r"\s*:\s*([A-Z]{1,5}(?:\.[A-Z])?)\b"
)
_BARE = re.compile(r"(?<![\w$./&-])([A-Z]{2,5}(?:\.[A-Z])?)(?![\w&]|\.[A-Za-z]|-\w)")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_TOKEN = re.compile(r"[^\W_]+")
_PARENS = re.compile(r"\([^)]*\)|/[A-Za-z]{2,3}/?\s*$")

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
# Single-word company names that are ordinary words: matched only with a company suffix.
COMMON_NAMES = frozenset(
    """
    ball block booking carnival coherent discover dover dow everest flex fox gap hartford
    match mosaic nasdaq news pool progressive southern tapestry target travelers visa waters
    williams
    """.split()
)
_SUFFIXES = frozenset(
    "inc incorporated corp corporation co company companies ltd limited plc holdings holding "
    "group lp llc nv sa ag se the".split()
)
_CONNECTORS = frozenset({"of", "and", "the", "de", "s"})
_GENERIC = frozenset(
    """
    acquisition america american bank capital company energy equity financial first
    fund global group growth health income industries international investment investments
    investors national new one partners real resources states systems technologies technology
    therapeutics trust united us
    """.split()
)
# Brand names not in either list, mapped to the filer's CIK (its primary ticker).
_BRANDS = {"google": 1652044, "facebook": 1326801, "meta": 1326801, "disney": 1744489}


@dataclass(frozen=True)
class Listing:
    """One listed security: canonical symbol, its issuer's name and where it came from."""

    symbol: str
    name: str
    source: str
    etf: bool = False


def canonical_variant(symbol: str) -> str:
    """Return ``symbol`` upper-cased with a class suffix written with a dot (BRK-B -> BRK.B)."""
    value = symbol.strip().upper()
    match = _CLASS_VARIANT.match(value)
    return f"{match.group(1)}.{match.group(2)}" if match else value


def normalize_name(title: str) -> str:
    """Return a company name lower-cased, without punctuation, parentheses or suffixes."""
    text = _PARENS.sub(" ", title).replace("&", " and ")
    tokens = [t for t in _TOKEN.findall(text.lower()) if t != "and"]
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    for i in range(len(tokens) - 1):
        pair = (tokens[i], tokens[i + 1])
        if pair == ("common", "stock") or (pair[0] == "class" and len(pair[1]) == 1):
            tokens = tokens[:i]  # "... Class A Common Stock": what follows is no name
            break
    while len(tokens) > 1 and (tokens[-1] in _SUFFIXES or len(tokens[-1]) == 1):
        tokens.pop()
    return " ".join(tokens)


@dataclass
class Universe:
    """Known symbols, CIK -> tickers and company names -> ticker.

    ``counts`` says what loading saw: rows read, test issues and bad or unsupported rows
    skipped (per file), symbols, CIKs and names.
    """

    listings: dict[str, Listing] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    ciks: dict[int, tuple[str, ...]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    suffix_only: frozenset[str] = frozenset()
    upper_only: frozenset[str] = frozenset()
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Universe:
        """Load the universe from ``<folder>/fixtures/tickers`` and ``<folder>/fixtures/edgar``."""
        tickers, edgar = folder / "fixtures" / "tickers", folder / "fixtures" / "edgar"
        return cls.from_files(
            nasdaq=tickers / "nasdaqlisted.txt",
            other=tickers / "otherlisted.txt",
            sp500=tickers / "sp500_constituents.csv",
            sec=edgar / "company_tickers.json",
        )

    @classmethod
    def from_files(cls, *, nasdaq: Path, other: Path, sp500: Path, sec: Path) -> Universe:
        """Load the universe from the four files.

        Raises:
            ConfigError: a file is missing, an HTML page, or lacks its expected header.
        """
        uni = cls()
        uni._pipe_file(nasdaq, _NASDAQ_COLUMNS, "Symbol", ())
        uni._pipe_file(other, _OTHER_COLUMNS, "ACT Symbol", ("CQS Symbol", "NASDAQ Symbol"))
        sp_rows = _csv_rows(sp500, ("Symbol", "Security", "CIK"))
        sec_rows = _sec_rows(sec)
        uni._sec(sec_rows)
        uni._sp500(sp_rows)
        uni._names(sp_rows, sec_rows)
        uni.counts.update(symbols=len(uni.listings), ciks=len(uni.ciks), names=len(uni.names))
        return uni

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.canonical(symbol) is not None

    def canonical(self, symbol: str) -> str | None:
        """Return the canonical form of a known symbol or of one of its aliases, else None."""
        value = symbol.strip().upper()
        found = self.aliases.get(value) or self.aliases.get(canonical_variant(value))
        return found

    def primary(self, cik: int) -> str | None:
        """Return the primary (first listed) ticker of a CIK, or None."""
        tickers = self.ciks.get(cik)
        return tickers[0] if tickers else None

    def _add(self, listing: Listing, *variants: str) -> None:
        self.listings.setdefault(listing.symbol, listing)
        self.aliases.setdefault(listing.symbol, listing.symbol)
        if "." in listing.symbol:
            base, cls = listing.symbol.split(".")
            for sep in ("-", "/", " "):
                self.aliases.setdefault(f"{base}{sep}{cls}", listing.symbol)
        for variant in variants:
            if variant:
                self.aliases.setdefault(variant.strip().upper(), listing.symbol)

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _pipe_file(
        self, path: Path, required: tuple[str, ...], key: str, extra: tuple[str, ...]
    ) -> None:
        name = path.name
        lines = _read(path).splitlines()
        header = lines[0].split("|") if lines else []
        missing = [c for c in required if c not in header]
        if missing:
            msg = f"{name}: expected a header with {', '.join(required)}; missing {missing}"
            raise ConfigError(msg)
        col = {c: i for i, c in enumerate(header)}
        for line in lines[1:]:
            if not line.strip() or line.startswith("File Creation Time"):
                continue
            row = line.split("|")
            self._count(f"{name}.rows")
            if len(row) != len(header) or not row[col[key]].strip():
                self._count(f"{name}.bad")
                continue
            if row[col["Test Issue"]] == "Y":
                self._count(f"{name}.test_issues")
                continue
            symbol = canonical_variant(row[col[key]])
            if not is_symbol(symbol):  # preferreds (ABR$D), rights, when-issued
                self._count(f"{name}.unsupported")
                continue
            etf = "ETF" in col and row[col["ETF"]] == "Y"
            listing = Listing(symbol, row[col["Security Name"]].strip(), name, etf)
            self._add(listing, *(row[col[c]] for c in extra if c in col))

    def _sec(self, rows: list[dict[str, Any]]) -> None:
        by_cik: dict[int, list[str]] = {}
        for row in rows:
            symbol = canonical_variant(str(row["ticker"]))
            if not is_symbol(symbol):
                self._count("company_tickers.json.unsupported")
                continue
            self._add(Listing(symbol, str(row["title"]), "company_tickers.json"), row["ticker"])
            by_cik.setdefault(int(row["cik_str"]), []).append(self.aliases[symbol])
        self.ciks.update({cik: tuple(unique(t)) for cik, t in by_cik.items()})

    def _sp500(self, rows: list[dict[str, str]]) -> None:
        for row in rows:
            symbol = canonical_variant(row["Symbol"])
            if not is_symbol(symbol):
                self._count("sp500_constituents.csv.bad")
                continue
            self._add(Listing(symbol, row["Security"], "sp500_constituents.csv"))
            if row["CIK"].strip().isdigit():
                cik = int(row["CIK"])
                known = self.ciks.get(cik, ())
                if self.aliases[symbol] not in known:
                    self.ciks[cik] = (*known, self.aliases[symbol])

    def _names(self, sp_rows: list[dict[str, str]], sec_rows: list[dict[str, Any]]) -> None:
        suffix_only: set[str] = set()
        upper_only: set[str] = set()
        for row in sp_rows:
            name = normalize_name(row["Security"])
            if " " not in name and len(name) <= 4 and row["Security"].split()[0].isupper():
                upper_only.add(name)  # PPL, CSX: only written PPL, never "Ppl" (people)
            cik = int(row["CIK"]) if row["CIK"].strip().isdigit() else -1
            ticker = self.primary(cik) or self.canonical(row["Symbol"])
            if len(name) >= 3 and ticker:
                self.names.setdefault(name, ticker)
                if name in COMMON_NAMES:
                    suffix_only.add(name)
        for brand, cik in _BRANDS.items():
            if (ticker := self.primary(cik)) is not None:
                self.names.setdefault(brand, ticker)
        for row in sec_rows:
            words = normalize_name(str(row["title"])).split()
            ticker = self.primary(int(row["cik_str"]))
            # "Clover Health Investments" is written "Clover Health": trailing generic words go.
            full = True
            while ticker and len(words) >= 2 and not all(w in _GENERIC for w in words):
                if not full and min(len(w) for w in words) < 3:
                    break  # "S&P Global" must not leave "S P"
                self.names.setdefault(" ".join(words), ticker)
                if words[-1] not in _GENERIC:
                    break
                words, full = words[:-1], False
        self.suffix_only = frozenset(suffix_only)
        self.upper_only = frozenset(upper_only)


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path}: {exc}"
        raise ConfigError(msg) from exc
    text, _ = decode(raw)
    head = text.lstrip()[:512].lower()
    if head.startswith(("<!doctype html", "<html", "<?xml")) or "<html" in head:
        kind = "a pipe-delimited symbol file" if path.suffix == ".txt" else "a data file"
        msg = f"{path.name} is an HTML page, not {kind}"
        raise ConfigError(msg)
    return text


def _csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(_read(path)))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        msg = f"{path.name}: expected a CSV header with {', '.join(required)}; missing {missing}"
        raise ConfigError(msg)
    return [row for row in reader if all(row.get(c) is not None for c in required)]


def _sec_rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        msg = f"{path.name} is not JSON: {exc}"
        raise ConfigError(msg) from exc
    values = data.values() if isinstance(data, dict) else data
    rows = [
        v
        for v in values
        if isinstance(v, dict) and {"cik_str", "ticker", "title"} <= v.keys()
        if str(v["cik_str"]).isdigit()
    ]
    if not rows:
        msg = f"{path.name}: no {{cik_str, ticker, title}} rows"
        raise ConfigError(msg)
    return rows


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
        tokens = list(_TOKEN.finditer(text))
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
            return after < len(tokens) and tokens[after].group().lower() in _SUFFIXES
        return True
