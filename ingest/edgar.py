"""SEC EDGAR filings: the current-filings Atom feed and index pages.

Four sources, one per thing EDGAR serves, each giving ``kind="filing"`` documents (two here,
two in their own modules, all built on `ingest.sec`):

- `EdgarAtomSource` (``edgar-atom``): the "latest filings" Atom feed, one document per
  filing although the feed repeats a filing once per party (Filer, Reporting, Issuer ...).
- `EdgarIndexSource` (``edgar-index``): a filing's ``-index.html`` page.
- `EdgarDocSource` (``edgar-doc``, in `ingest.edgar_doc`): a primary document as clean text.
- `EdgarSubmissionsSource` (``edgar-submissions``, in `ingest.edgar_submissions`):
  data.sec.gov submissions JSON, one document per filing listed.

Each representation of a filing is its own document, ``doc_id = stable_id("sec", kind,
accession)``; ``meta["accession"]`` links them. ``meta`` always carries ``form_type``,
``items`` (8-K items such as ``"2.02"``), ``cik``, ``ciks`` (the companies: issuer, subject,
filer, filed by; reporting insiders are left out, see `ingest.sec.COMPANY_ROLES`), ``company``,
``accession`` and ``filed_at`` (ISO date). ``tickers`` holds only tickers the input states
outright (the submissions JSON's, the source's own): mapping CIKs to tickers is the
linker's work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import defusedxml.ElementTree as SafeET

from infra.errors import DecodeError
from ingest.safexml import parse_xml, xml_text
from ingest.sec import (
    SEC,
    FilingSource,
    OneFilingSource,
    accession_of,
    company_parties,
    eastern,
    edgar_time,
    filing_document,
    filing_title,
    form_matches,
    index_url,
    iso_date,
    lead_item,
    tag_spans,
)
from ingest.text import clean_text
from streams.records import Document, Rejected

_ATOM = "{http://www.w3.org/2005/Atom}"
_HTML_START = re.compile(r"<!DOCTYPE\s+html|<html\b", re.IGNORECASE)
# "4 - Smith John (0001234567) (Reporting)"; names may hold " - " and parentheses.
_ENTRY_TITLE = re.compile(r"^(.+?) - (.*) \((\d{1,10})\) \(([^()]+)\)$", re.DOTALL)
_ITEM_LINE = re.compile(r"^Item\s+([0-9][\w.]*):\s*(.*)$", re.MULTILINE)
_FILED = re.compile(r"Filed:\s*(\d{4}-\d{2}-\d{2})")
_DIV_END = re.compile(r"</div>")
_INFO_TAG = re.compile(r'<div class="(infoHead|info)">|</div>')
_COMPANY = re.compile(r'<span class="companyName">')
_SPAN_END = re.compile(r"</span>")


class EdgarAtomSource(FilingSource):
    """The EDGAR current-filings Atom feed: one document per filing (accession number).

    Args:
        url: the feed's URL (``browse-edgar?action=getcurrent&output=atom``) or a path.
    """

    kind = "edgar-atom"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse feed bytes into one document per filing, and rejects."""
        entries, problem = _read_atom(raw)
        filings: dict[str, list[dict[str, str]]] = {}
        for index, entry in enumerate(entries):
            accession = accession_of(entry.get("id", ""), entry.get("summary", ""))
            if accession is None:
                err = DecodeError(
                    "missing_field", f"entry {index}: no accession number in id or summary"
                )
                yield self._refuse(err, repr(entry))
            elif not entry.get("term") and not _ENTRY_TITLE.match(entry.get("title", "")):
                err = DecodeError("missing_field", f"entry {index}: no form type")
                yield self._refuse(err, repr(entry))
            else:
                filings.setdefault(accession, []).append(entry)
        for accession, group in filings.items():
            document = self._document(accession, group, fetched_at)
            if form_matches(document.meta["form_type"], self.forms):
                yield document
        if problem is not None:
            yield self._refuse(problem, raw)

    def _document(
        self, accession: str, group: list[dict[str, str]], fetched_at: datetime
    ) -> Document:
        parties: list[dict[str, Any]] = []
        links: dict[int, str] = {}
        form = ""
        for entry in group:
            title = _ENTRY_TITLE.match(entry.get("title", ""))
            form = form or entry.get("term", "") or (title.group(1) if title else "")
            if title:
                name, role = title.group(2).strip(), title.group(4)
                party: dict[str, Any] = {"cik": int(title.group(3)), "name": name, "role": role}
                if party not in parties:
                    parties.append(party)
                links.setdefault(party["cik"], entry.get("link", ""))
        companies = company_parties(parties)
        cik = companies[0]["cik"] if companies else None
        summary = clean_text(group[0].get("summary", ""))
        items = [(m.group(1), m.group(2).strip()) for m in _ITEM_LINE.finditer(summary)]
        named = companies or parties
        company = companies[0]["name"] if companies else None
        lead = lead_item(items)
        others = [f"{p['name']} ({p['role']})" for p in parties if p not in named]
        if not lead and others:
            lead = "; ".join(others[:2]) + (f" and {len(others) - 2} more" if others[2:] else "")
        filed = _FILED.search(summary)
        roster = "\n".join(f"{p['name']} (CIK {p['cik']}) {p['role']}" for p in parties)
        url = links.get(cik or -1) or group[0].get("link", "") or index_url(cik, accession)
        return filing_document(
            self.name,
            self.kind,
            accession=accession,
            url=url,
            title=filing_title(company or (named[0]["name"] if named else None), form, lead),
            body=f"{summary}\n{roster}".strip()[: self.body_max_chars],
            published=edgar_time(group[0].get("updated", "")),
            fetched_at=fetched_at,
            tickers=self.tickers,
            meta={
                "form_type": form,
                "items": [number for number, _ in items],
                "cik": cik,
                "ciks": [p["cik"] for p in companies],
                "company": company,
                "filed_at": iso_date(filed.group(1)) if filed else None,
                "parties": parties,
            },
        )


class _AtomEntries:
    """Parser target keeping the fields of each complete Atom entry as the parser meets it.

    A target (rather than a tree) keeps every entry before the point where a cut-off or
    corrupt feed stops parsing.
    """

    def __init__(self) -> None:
        self.root: str | None = None
        self.entries: list[dict[str, str]] = []
        self._entry: dict[str, str] | None = None
        self._text: list[str] = []

    def start(self, tag: str, attrs: Mapping[str, str]) -> None:
        self.root = self.root or tag
        self._text = []
        if tag == f"{_ATOM}entry":
            self._entry = {}
        elif self._entry is not None and tag == f"{_ATOM}link":
            self._entry.setdefault("link", attrs.get("href", ""))
        elif self._entry is not None and tag == f"{_ATOM}category":
            self._entry.setdefault("term", attrs.get("term", "").strip())

    def data(self, text: str) -> None:
        self._text.append(text)

    def end(self, tag: str) -> None:
        if self._entry is None:
            return
        if tag == f"{_ATOM}entry":
            self.entries.append(self._entry)
            self._entry = None
        elif tag.removeprefix(_ATOM) in ("title", "id", "updated", "summary"):
            self._entry[tag.removeprefix(_ATOM)] = "".join(self._text).strip()

    def close(self) -> None:
        """Finish parsing (the parser's protocol); the entries are already kept."""


def _read_atom(raw: bytes) -> tuple[list[dict[str, str]], DecodeError | None]:
    """Return the complete entries of an Atom feed, and what went wrong, if anything."""
    text = xml_text(raw)[0]
    if not text.strip():
        return [], DecodeError("not_a_feed", "empty input")
    target = _AtomEntries()
    try:
        parse_xml(text, target)
    except DecodeError as err:
        return [], err
    except SafeET.ParseError as exc:
        if target.root is None or target.root != f"{_ATOM}feed":
            html = target.root in ("html", "{http://www.w3.org/1999/xhtml}html")
            if html or (target.root is None and _HTML_START.search(text[:2_000])):
                return [], DecodeError("not_a_feed", f"an HTML page, not a feed: {exc}")
            if target.root is not None:
                return [], DecodeError("not_a_feed", f"root element {target.root}: {exc}")
            return [], DecodeError("malformed_feed", f"not well-formed XML: {exc}")
        detail = f"feed breaks off after {len(target.entries)} complete entries: {exc}"
        return target.entries, DecodeError("malformed_feed", detail)
    if target.root != f"{_ATOM}feed":
        return [], DecodeError("not_a_feed", f"root element is {target.root}, not an Atom feed")
    return target.entries, None


class EdgarIndexSource(OneFilingSource):
    """A filing's index page (``{accession}-index.html``): one document.

    Args:
        url: the index page's URL or a path.
    """

    kind = "edgar-index"

    def _document(self, page: str, fetched_at: datetime) -> Document:
        form_name = clean_text(_div(page, r'id="formName"'))
        form = re.match(r"Form\s+(.+?)\s+-\s*(.*?):?$", form_name, re.DOTALL)
        accession = accession_of(clean_text(_div(page, r'id="secNum"')))
        if form is None or accession is None:
            reason, msg = "not_a_filing_index", "no form name or accession number on the page"
            raise DecodeError(reason, msg)
        info = _info(page)
        items = [
            (m.group(1), m.group(2).strip()) for m in _ITEM_LINE.finditer(info.get("Items", ""))
        ]
        parties = []
        for start, end in tag_spans(page, _COMPANY, _SPAN_END):
            span = clean_text(page[start.end() : end.start()])
            found = re.match(r"(.*?)\s*\(([^()]+)\)\s*CIK:\s*(\d{1,10})", span, re.S)
            if found:
                party = {"cik": int(found.group(3)), "name": found.group(1), "role": found.group(2)}
                parties.append(party)
        companies = company_parties(parties)
        cik = companies[0]["cik"] if companies else None
        company = companies[0]["name"] if companies else None
        table = page.find('class="tableFile"')
        href = re.search(r'href="([^"]+)"', page[table:]) if table >= 0 else None
        primary = href.group(1).removeprefix("/ix?doc=") if href else None
        if primary and primary.startswith("/"):
            primary = SEC + primary
        form_type = form.group(1).strip()
        lead = lead_item(items) or form.group(2).strip()
        lines = [form_name, *(f"{head}: {value}" for head, value in info.items())]
        lines += [f"{p['name']} (CIK {p['cik']}) {p['role']}" for p in parties]
        url = self.url if self.url.startswith("http") else index_url(cik, accession)
        return filing_document(
            self.name,
            self.kind,
            accession=accession,
            url=url,
            title=filing_title(company, form_type, lead),
            body="\n".join(lines)[: self.body_max_chars],
            published=eastern(info.get("Accepted", ""), "%Y-%m-%d %H:%M:%S"),
            fetched_at=fetched_at,
            tickers=self.tickers,
            meta={
                "form_type": form_type,
                "items": [number for number, _ in items],
                "cik": cik,
                "ciks": [p["cik"] for p in companies],
                "company": company,
                "filed_at": iso_date(info.get("Filing Date", "")),
                "period_of_report": iso_date(info.get("Period of Report", "")),
                "primary_document": primary,
                "parties": parties,
            },
        )


def _div(page: str, attribute: str) -> str:
    start = re.compile(rf"<div {attribute}>")
    first = next(tag_spans(page, start, _DIV_END), None)
    return page[first[0].end() : first[1].start()] if first else ""


def _info(page: str) -> dict[str, str]:
    """Return the ``infoHead: info`` pairs of an index page, in one pass over its div tags."""
    tags = list(_INFO_TAG.finditer(page))
    pairs: dict[str, str] = {}
    at = 0
    while at < len(tags):
        head, at = tags[at], at + 1
        if head.group(1) != "infoHead":
            continue
        # The head ends at the next </div>; its value's div must follow with only spaces.
        close = next((i for i in range(at, len(tags)) if tags[i].group(1) is None), None)
        if close is None or close + 1 >= len(tags):
            break
        value = tags[close + 1]
        if value.group(1) != "info" or page[tags[close].end() : value.start()].strip():
            at = close + 1
            continue
        end = next((i for i in range(close + 2, len(tags)) if tags[i].group(1) is None), None)
        if end is None:
            break
        text = page[value.end() : tags[end].start()]
        pairs[clean_text(page[head.end() : tags[close].start()])] = clean_text(text)
        at = end + 1
    return pairs
