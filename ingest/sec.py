"""What every EDGAR source shares: SEC's URLs, times and ids, filing documents, a base class.

`ingest.edgar` (the Atom feed, index pages), `ingest.edgar_doc` (documents) and
`ingest.edgar_submissions` (the submissions JSON) build on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from infra.errors import DecodeError
from ingest.base import SourceBase
from ingest.text import decode, unique
from models.taxonomy import ITEMS_8K
from streams.records import Document, Rejected, stable_id

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
TITLE_MAX = 300


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


def eastern(value: str, fmt: str) -> datetime | None:
    """Return an EDGAR local time (US Eastern) as UTC, or None when it does not parse."""
    try:
        local = datetime.strptime(value.strip(), fmt)  # noqa: DTZ007 - zone set next line
        return local.replace(tzinfo=EASTERN).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def edgar_time(value: str) -> datetime | None:
    """Return an ISO 8601 time as UTC; a time without zone is EDGAR's US Eastern."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=EASTERN)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def legacy_items(form: str, items: Sequence[str]) -> dict[str, bool]:
    """Flag 8-K items numbered before August 2004 ("5", "12"): their meaning differs."""
    legacy = form.upper().startswith("8-K") and any("." not in item for item in items)
    return {"legacy_items": True} if legacy else {}


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


def item_label(number: str, heading: str = "") -> str:
    """Return "Item 5.02 Departure of ..." with the standard name when none is given."""
    heading = heading or (ITEMS_8K[number].heading if number in ITEMS_8K else "")
    return f"Item {number} {heading}".strip()


def filing_title(company: str | None, form: str, lead: str = "") -> str:
    """Return a title a person recognises: "NVIDIA CORP 8-K: Item 5.02 Departure of ..."."""
    head = " ".join(part for part in (company, form) if part) or "EDGAR filing"
    return (f"{head}: {lead}" if lead else head)[:TITLE_MAX]


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
    """What the EDGAR sources share: a form-type filter.

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


class OneFilingSource(FilingSource):
    """A source whose input is one filing's page: one document, or one reject."""

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse the page into one document (none if its form is filtered out), or a reject."""
        try:
            document = self._document(decode(raw)[0], fetched_at)
        except DecodeError as err:
            yield self._refuse(err, raw)
            return
        if form_matches(document.meta["form_type"], self.forms):
            yield document

    def _document(self, text: str, fetched_at: datetime) -> Document:
        raise NotImplementedError
