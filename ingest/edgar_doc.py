"""EDGAR primary documents as clean text.

`EdgarDocSource` reads what ``Archives/edgar/data/...`` serves for one filing: a primary
document (HTML, inline XBRL), a full-submission ``.txt`` (SGML header, then one
``<DOCUMENT>`` per file) or a single ``<DOCUMENT>`` (an exhibit).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from infra.errors import DecodeError
from ingest.sec import (
    TITLE_MAX,
    OneFilingSource,
    accession_of,
    cik_of,
    company_parties,
    eastern,
    filing_document,
    filing_title,
    index_url,
    iso_date,
    lead_item,
    legacy_items,
    tag_spans,
)
from ingest.text import clean_text, find_tickers, is_symbol, unique
from streams.records import Document

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


def _without(text: str, start: re.Pattern[str], end: re.Pattern[str]) -> str:
    """Return the text with each start...end element replaced by a space."""
    parts, kept = [], 0
    for opening, closing in tag_spans(text, start, end):
        parts += [text[kept : opening.start()], " "]
        kept = closing.end()
    return "".join([*parts, text[kept:]])


def item_headings(text: str) -> list[tuple[str, str]]:
    """Return (number, heading) of each "Item N.NN ..." line, first occurrence first."""
    found: dict[str, str] = {}
    for match in _ITEM_HEADING.finditer(text):
        number = match.group(1).upper()
        found.setdefault(number, match.group(2).strip().rstrip("."))
    return list(found.items())


class EdgarDocSource(OneFilingSource):
    """A filing's primary document, a full-submission .txt or one exhibit: one document.

    Args:
        url: where the document lives; its ``/edgar/data/{cik}/{accession}/`` part gives
            the CIK and accession when the document itself does not.
    """

    kind = "edgar-doc"

    def _document(self, text: str, fetched_at: datetime) -> Document:
        header = _SGML_HEADER.search(text)
        fields, parties = _sgml_header(header.group(1)) if header else ({}, [])
        document = _sgml_document(text)
        tags, markup = document or ({}, text)
        dei, symbols = _cover_facts(markup)
        body = _plain_text(markup)
        items = item_headings(body)
        cover = _COVER_FORM.search(body[:5_000])
        if not (header or document or dei or cover or items):
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
        meta |= legacy_items(form, numbers)
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


def _sgml_document(text: str) -> tuple[dict[str, str], str] | None:
    """Return the first <DOCUMENT>'s tags (TYPE, FILENAME...) and its text; None without one."""
    doc = _SGML_DOC.search(text)
    if not doc:
        return None
    inner = _SGML_TEXT.search(doc.group(1))
    return dict(_SGML_TAG.findall(doc.group(1)[:2_000])), inner.group(1) if inner else doc.group(1)


def _cover_facts(markup: str) -> tuple[dict[str, str], list[str]]:
    """Return the inline XBRL cover facts (dei:Name, first value kept) and trading symbols."""
    facts = [
        (start.group(1), clean_text(markup[start.end() : end.start()], 500))
        for start, end in tag_spans(markup, _DEI, _DEI_END)
    ]
    dei = {name: value for name, value in reversed(facts) if value}
    return dei, [value for name, value in facts if name == "TradingSymbol"]


def _plain_text(markup: str) -> str:
    """Return the document's text without its hidden inline XBRL header."""
    markup = _without(markup, _IX_HEADER, _IX_HEADER_END)
    if _HTML.search(markup):
        # HTML whitespace means nothing; wrapped headings ("Item 9. Regulation\nFD") join.
        markup = re.sub(r"\s+", " ", markup)
    return clean_text(markup)


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
            return line[:TITLE_MAX]
    return ""
