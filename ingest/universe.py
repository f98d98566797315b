"""The symbol universe: what is listed, under which aliases, by which company.

`Universe` holds the known symbols (Nasdaq Trader's nasdaqlisted and otherlisted files, the
S&P 500 list, SEC company_tickers.json), CIK -> tickers and company names -> ticker;
`ingest.tickers.Linker` links documents with it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import ConfigError
from ingest.text import decode, is_symbol, unique

_NASDAQ_COLUMNS = ("Symbol", "Security Name", "Test Issue")
_OTHER_COLUMNS = ("ACT Symbol", "Security Name", "Exchange", "Test Issue")
_CLASS_VARIANT = re.compile(r"^([A-Z]{1,5})[ ./-]([A-Z])$")
TOKEN = re.compile(r"[^\W_]+")
_PARENS = re.compile(r"\([^)]*\)|/[A-Za-z]{2,3}/?\s*$")
# Single-word company names that are ordinary words: matched only with a company suffix.
COMMON_NAMES = frozenset(
    """
    ball block booking carnival coherent discover dover dow everest flex fox gap hartford
    match mosaic nasdaq news pool progressive southern tapestry target travelers visa waters
    williams
    """.split()
)
SUFFIXES = frozenset(
    "inc incorporated corp corporation co company companies ltd limited plc holdings holding "
    "group lp llc nv sa ag se the".split()
)
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
    tokens = [t for t in TOKEN.findall(text.lower()) if t != "and"]
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    for i in range(len(tokens) - 1):
        pair = (tokens[i], tokens[i + 1])
        if pair == ("common", "stock") or (pair[0] == "class" and len(pair[1]) == 1):
            tokens = tokens[:i]  # "... Class A Common Stock": what follows is no name
            break
    while len(tokens) > 1 and (tokens[-1] in SUFFIXES or len(tokens[-1]) == 1):
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
