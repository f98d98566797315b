"""EDGAR primary documents as clean text, and the pieces every EDGAR source shares.

`EdgarDocSource` reads what ``Archives/edgar/data/...`` serves for one filing: a primary
document (HTML, inline XBRL), a full-submission ``.txt`` (SGML header, then one
``<DOCUMENT>`` per file) or a single ``<DOCUMENT>`` (an exhibit). `ingest.edgar` builds the
other EDGAR sources on the helpers defined here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from infra.errors import DecodeError
from ingest.base import SourceBase
from ingest.text import clean_text, decode, find_tickers, is_symbol, unique
from models.taxonomy import ITEMS_8K
from streams.records import Document, Rejected, stable_id, utcnow

log = logging.getLogger(__name__)

SEC = "https://www.sec.gov"
# EDGAR prints times without a zone; they are the SEC's local time.
EASTERN = ZoneInfo("America/New_York")
ACCESSION = re.compile(r"\b(\d{10})-(\d{2})-(\d{6})\b")
_FOLDER = re.compile(r"/edgar/data/(\d{1,10})/(\d{18})(?:/|$)")
_CIK_IN_URL = re.compile(r"(?:/edgar/data/|CIK)(\d{1,10})\b")
# Roles whose party is the company a filing is about or made by; "Reporting" parties are
# insiders (people, funds) reporting their own holdings, so they stay out of meta["ciks"].
# Ordered by relevance: ciks[0] is the company a story about this filing is about.
COMPANY_ROLES = ("Issuer", "Subject", "Filed for", "Filer", "Filed by")
_TITLE_MAX = 300

# "Item 2.02. Results ...", "ITEM 5.02 Departure ...", legacy "Item 9. Regulation FD ...".
_ITEM_HEADING = re.compile(
    r"^item[ \t]+(\d{1,2}\.\d{2}|\d{1,2}[A-C]?)\b[ \t]*[.:\-\u2013\u2014]?[ \t]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_COVER_FORM = re.compile(r"^FORM\s+(\d{1,2}-[A-Z]{1,2}(?:/A)?)$", re.MULTILINE)
_HTML = re.compile(r"<(?:html|body|p|div|table|font)\b", re.IGNORECASE)
_IX_HEADER = re.compile(r"<ix:header\b", re.IGNORECASE)
_IX_HEADER_END = re.compile(r"</ix:header\s*>", re.IGNORECASE)
# Bounded: a tag of thousands of characters is no tag, and each bound is a rescan cap.
_DEI = re.compile(
    r"<ix:nonNumeric\b[^>]{0,2000}?name=[\"']dei:(\w+)[\"'][^>]{0,2000}>", re.IGNORECASE
)
_DEI_END = re.compile(r"</ix:nonNumeric\s*>", re.IGNORECASE)
_SGML_HEADER = re.compile(r"<SEC-HEADER>(.*?)(?:</SEC-HEADER>|<DOCUMENT>|\Z)", re.DOTALL)
_SGML_DOC = re.compile(r"<DOCUMENT>(.*?)(?:</DOCUMENT>|\Z)", re.DOTALL)
_SGML_TAG = re.compile(r"^<(TYPE|FILENAME|DESCRIPTION)>([^\n<]*)", re.MULTILINE)
_SGML_TEXT = re.compile(r"<TEXT>(.*?)(?:</TEXT>|\Z)", re.DOTALL)
_SGML_FIELD = re.compile(r"^[ \t]*([A-Z][A-Z0-9 /-]*?):[ \t]*(\S[^\n]*)?$", re.MULTILINE)
_SGML_ROLES = {
    "FILER": "Filer",
    "SUBJECT COMPANY": "Subject",
    "FILED BY": "Filed by",
    "ISSUER": "Issuer",
    "REPORTING-OWNER": "Reporting",
}


def tag_spans(
    text: str, start: re.Pattern[str], end: re.Pattern[str]
) -> Iterator[tuple[re.Match[str], re.Match[str]]]:
    """Yield each start tag with the first end tag after it, as ``start.*?end`` would match.

    In one pass over both: the lazy regex rescans the rest of the text for every start tag
    that is never closed, minutes on a megabyte of unclosed ``<ix:nonNumeric>``.
    """
    ends = end.finditer(text)
    closing = next(ends, None)
    resume = 0
    for opening in start.finditer(text):
        if opening.start() < resume:
            continue
        while closing is not None and closing.start() < opening.end():
            closing = next(ends, None)
        if closing is None:
            return
        yield opening, closing
        resume = closing.end()


def _without(text: str, start: re.Pattern[str], end: re.Pattern[str]) -> str:
    """Return the text with each start...end element replaced by a space."""
    parts, kept = [], 0
    for opening, closing in tag_spans(text, start, end):
        parts += [text[kept : opening.start()], " "]
        kept = closing.end()
    return "".join([*parts, text[kept:]])


def eastern(value: str, fmt: str) -> datetime | None:
    """Return an EDGAR local time (US Eastern) as UTC, or None when it does not parse."""
    try:
        local = datetime.strptime(value.strip(), fmt)  # noqa: DTZ007 - zone set next line
        return local.replace(tzinfo=EASTERN).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def iso_date(value: str, fmt: str = "%Y-%m-%d") -> str | None:
    """Return a date as ISO ``YYYY-MM-DD``, or None when it does not parse."""
    try:
        return datetime.strptime(value.strip(), fmt).date().isoformat()  # noqa: DTZ007
    except ValueError:
        return None


def accession_of(*texts: str) -> str | None:
    """Return the first accession number written in the texts (dashed or as a folder)."""
    for text in texts:
        found = ACCESSION.search(text)
        if found:
            return found.group(0)
        folder = _FOLDER.search(text)
        if folder:
            digits = folder.group(2)
            return f"{digits[:10]}-{digits[10:12]}-{digits[12:]}"
    return None


def cik_of(text: str) -> int | None:
    """Return the CIK written in an EDGAR URL (``/edgar/data/320193/``, ``CIK0000320193``)."""
    found = _CIK_IN_URL.search(text)
    return int(found.group(1)) if found else None


def archive_url(cik: int, accession: str, name: str) -> str:
    """Return the https://www.sec.gov URL of a file in a filing's folder."""
    return f"{SEC}/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{name}"


def index_url(cik: int | None, accession: str | None) -> str:
    """Return the URL of a filing's index page ("" when the CIK or accession is unknown)."""
    if cik is None or not accession:
        return ""
    return archive_url(cik, accession, f"{accession}-index.html")


def form_matches(form: str, forms: Sequence[str]) -> bool:
    """Whether a form passes a filter: empty keeps all, "8-K" also keeps "8-K/A"."""
    if not forms:
        return True
    wanted = {f.upper() for f in forms}
    form = form.upper()
    return form in wanted or form.removesuffix("/A") in wanted


def company_parties(parties: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the company parties (see COMPANY_ROLES), most relevant first, one per CIK."""
    ranked = sorted(
        (p for p in parties if p["role"] in COMPANY_ROLES),
        key=lambda p: COMPANY_ROLES.index(p["role"]),
    )
    unique_ciks: dict[int, dict[str, Any]] = {}
    for party in ranked:
        unique_ciks.setdefault(party["cik"], party)
    return list(unique_ciks.values())


def item_headings(text: str) -> list[tuple[str, str]]:
    """Return (number, heading) of each "Item N.NN ..." line, first occurrence first."""
    found: dict[str, str] = {}
    for match in _ITEM_HEADING.finditer(text):
        number = match.group(1).upper()
        found.setdefault(number, match.group(2).strip().rstrip("."))
    return list(found.items())


def item_label(number: str, heading: str = "") -> str:
    """Return "Item 5.02 Departure of ..." with the standard name when none is given."""
    heading = heading or (ITEMS_8K[number].heading if number in ITEMS_8K else "")
    return f"Item {number} {heading}".strip()


def filing_title(company: str | None, form: str, lead: str = "") -> str:
    """Return a title a person recognises: "NVIDIA CORP 8-K: Item 5.02 Departure of ..."."""
    head = " ".join(part for part in (company, form) if part) or "EDGAR filing"
    return (f"{head}: {lead}" if lead else head)[:_TITLE_MAX]


def lead_item(items: Sequence[tuple[str, str]]) -> str:
    """Return the label of the item that says what happened (9.01 only lists exhibits)."""
    for number, heading in items:
        if number != "9.01":
            return item_label(number, heading)
    return item_label(*items[0]) if items else ""


def filing_document(
    source: str,
    kind: str,
    *,
    accession: str | None,
    url: str,
    title: str,
    body: str,
    published: datetime | None,
    fetched_at: datetime,
    tickers: Sequence[str],
    meta: dict[str, Any],
) -> Document:
    """Build a filing Document; its id is per (source kind, accession).

    Each representation of a filing (feed entry, index page, document, JSON row) is its
    own document; ``meta["accession"]`` links them.
    """
    meta = {"accession": accession, **meta}
    if published is None:
        published = fetched_at
        meta["published_missing"] = True
    if accession:
        doc_id = stable_id("sec", kind, accession)
    else:
        doc_id = stable_id("sec", kind, "url", url or title)
        meta["id_derived"] = True
    return Document(
        doc_id=doc_id,
        source=source,
        kind="filing",
        url=url,
        title=title,
        body=body,
        published_at=published,
        fetched_at=fetched_at,
        tickers=tuple(unique(tickers)),
        meta=meta,
    )


class FilingSource(SourceBase):
    """What the EDGAR sources share: a form-type filter, and errors turned into rejects.

    Args:
        forms: form types to keep ("8-K" also keeps "8-K/A"); empty keeps all.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        forms: Sequence[str] = (),
        tickers: Sequence[str] = (),
        body_max_chars: int = 20_000,
    ) -> None:
        super().__init__(name, url, tickers=tickers, body_max_chars=body_max_chars)
        self.forms = tuple(forms)

    def _refuse(self, err: DecodeError, payload: bytes | str) -> Rejected:
        return self._reject(err.reason, err.detail, payload)


class OneFilingSource(FilingSource):
    """A source whose input is one filing's page: one document, or one reject."""

    def parse(
        self, raw: bytes, fetched_at: datetime | None = None
    ) -> Iterator[Document | Rejected]:
        """Parse the page into one document (none if its form is filtered out), or a reject."""
        fetched_at = fetched_at or utcnow()
        try:
            document = self._document(decode(raw)[0], fetched_at)
        except DecodeError as err:
            yield self._refuse(err, raw)
            return
        if form_matches(document.meta["form_type"], self.forms):
            yield document

    def _document(self, text: str, fetched_at: datetime) -> Document:
        raise NotImplementedError


class EdgarDocSource(OneFilingSource):
    """A filing's primary document, a full-submission .txt or one exhibit: one document.

    Args:
        name: the source's name, stored with every document.
        url: where the document lives; its ``/edgar/data/{cik}/{accession}/`` part gives
            the CIK and accession when the document itself does not.
        forms: form types to keep ("8-K" also keeps "8-K/A"); empty keeps all.
        tickers: tickers every document of this source is about.
        body_max_chars: bodies are cut to this many characters.
    """

    kind = "edgar-doc"

    def _document(self, text: str, fetched_at: datetime) -> Document:
        header = _SGML_HEADER.search(text)
        fields, parties = _sgml_header(header.group(1)) if header else ({}, [])
        doc = _SGML_DOC.search(text)
        tags = dict(_SGML_TAG.findall(doc.group(1)[:2_000])) if doc else {}
        markup = text
        if doc:
            inner = _SGML_TEXT.search(doc.group(1))
            markup = inner.group(1) if inner else doc.group(1)
        facts = [
            (start.group(1), clean_text(markup[start.end() : end.start()], 500))
            for start, end in tag_spans(markup, _DEI, _DEI_END)
        ]
        dei = {name: value for name, value in reversed(facts) if value}
        symbols = [value for name, value in facts if name == "TradingSymbol"]
        markup = _without(markup, _IX_HEADER, _IX_HEADER_END)
        if _HTML.search(markup):
            # HTML whitespace means nothing; wrapped headings ("Item 9. Regulation\nFD") join.
            markup = re.sub(r"\s+", " ", markup)
        body = clean_text(markup)
        items = item_headings(body)
        cover = _COVER_FORM.search(body[:5_000])
        if not (header or doc or dei or cover or items):
            # Nothing a filing has: SEC header, inline XBRL cover facts, "FORM" line, Items.
            reason, msg = "not_a_filing_document", "no SEC header, cover page or Item heading"
            raise DecodeError(reason, msg)
        companies = company_parties(parties)
        form = (
            fields.get("CONFORMED SUBMISSION TYPE")
            or tags.get("TYPE", "").strip()
            or dei.get("DocumentType")
            or (cover.group(1) if cover else "")
        )
        company = (companies[0]["name"] if companies else None) or dei.get("EntityRegistrantName")
        cik = companies[0]["cik"] if companies else _int(dei.get("EntityCentralIndexKey", ""))
        cik = cik or cik_of(self.url)
        accession = fields.get("ACCESSION NUMBER") or accession_of(text[:300], self.url)
        numbers = [number for number, _ in items]
        meta: dict[str, Any] = {
            "form_type": form,
            "items": numbers,
            "cik": cik,
            "ciks": [p["cik"] for p in companies] or ([cik] if cik else []),
            "company": company,
            "filed_at": iso_date(fields.get("FILED AS OF DATE", ""), "%Y%m%d"),
            "parties": parties,
            # Symbols the document itself declares; kept out of tickers, which carry only
            # what the source was configured with (the linker decides).
            "trading_symbols": [s for s in unique([*symbols, *find_tickers(body)]) if is_symbol(s)],
        }
        if any("." not in number for number in numbers) and form.upper().startswith("8-K"):
            # Pre-August-2004 numbering ("Item 5", "Item 12"): kept, but it means other things.
            meta["legacy_items"] = True
        if tags.get("FILENAME"):
            meta["filename"] = tags["FILENAME"].strip()
        lead = lead_item(items) or _headline(body)
        url = self.url if self.url.startswith("http") else index_url(cik, accession)
        return filing_document(
            self.name,
            self.kind,
            accession=accession,
            url=url,
            title=filing_title(company, form, lead),
            body=body[: self.body_max_chars],
            published=eastern(fields.get("ACCEPTANCE-DATETIME", ""), "%Y%m%d%H%M%S"),
            fetched_at=fetched_at,
            tickers=self.tickers,
            meta=meta,
        )


def _sgml_header(header: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Return the header's first value per field, and its parties (FILER:, ISSUER: ...)."""
    fields: dict[str, str] = {}
    accepted = re.search(r"<ACCEPTANCE-DATETIME>(\d{14})", header)
    if accepted:
        fields["ACCEPTANCE-DATETIME"] = accepted.group(1)
    parties: list[dict[str, Any]] = []
    role: str | None = None
    name = ""
    for match in _SGML_FIELD.finditer(header):
        key, value = match.group(1).strip(), (match.group(2) or "").strip()
        if not value and not match.group(0).startswith(("\t", " ")):
            role = _SGML_ROLES.get(key)
        elif key == "COMPANY CONFORMED NAME":
            name = value
        elif key == "CENTRAL INDEX KEY" and role and _int(value):
            parties.append({"cik": _int(value), "name": name, "role": role})
        if value:
            fields.setdefault(key, value)
    return fields, parties


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) <= 10 else None


_COVER_WORDS = ("UNITED STATES", "SECURITIES", "COMMISSION", "PURSUANT")


def _headline(body: str) -> str:
    """Return the first upper-case line of four words or more (a press release headline)."""
    for line in body.splitlines()[:200]:
        words = line.split()
        if len(words) >= 4 and line.isupper() and not any(w in line for w in _COVER_WORDS):
            return line[:_TITLE_MAX]
    return ""
