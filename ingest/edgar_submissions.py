"""data.sec.gov submissions JSON: `EdgarSubmissionsSource`, one document per filing listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from infra.errors import DecodeError
from ingest.sec import (
    FilingSource,
    accession_of,
    archive_url,
    cik_of,
    edgar_time,
    filing_document,
    filing_title,
    form_matches,
    index_url,
    iso_date,
    item_label,
    lead_item,
    legacy_items,
)
from ingest.text import decode, load_json
from streams.records import Document, Rejected


class EdgarSubmissionsSource(FilingSource):
    """data.sec.gov submissions JSON (``CIK##########.json`` or a ``-submissions-NNN``
    overflow page): one document per filing listed.

    Args:
        url: the JSON's URL or a path; an overflow page's CIK comes from its name.
        tickers: tickers every document of this source is about (added to the JSON's).
    """

    kind = "edgar-submissions"

    def _parse(self, raw: bytes, fetched_at: datetime) -> Iterator[Document | Rejected]:
        """Parse submissions JSON into documents, and a reject per unusable row."""
        try:
            data = load_json(decode(raw)[0])
        except DecodeError as err:
            yield self._refuse(DecodeError(err.reason, err.detail[:200]), raw)
            return
        try:
            company, cik, tickers, columns = self._company(data)
        except DecodeError as err:
            yield self._refuse(err, raw)
            return
        where = "filings.recent." if "filings" in data else ""
        for row in range(len(columns["accessionNumber"])):
            values = {key: _cell(column, row) for key, column in columns.items()}
            try:
                document = self._document(values, company, cik, tickers, fetched_at)
            except DecodeError as err:
                detail = f"{where}{err.detail}[{row}]"
                yield self._refuse(DecodeError(err.reason, detail), json.dumps(values))
                continue
            if form_matches(document.meta["form_type"], self.forms):
                yield document

    def _company(self, data: Any) -> tuple[str | None, int, list[str], dict[str, list[Any]]]:
        """Return the company, CIK, tickers and filing columns of a submissions file."""
        if not isinstance(data, dict):
            reason, msg = "not_a_submissions_file", f"a JSON {type(data).__name__}, not object"
            raise DecodeError(reason, msg)
        filings = data.get("filings")
        columns = filings.get("recent") if isinstance(filings, dict) else data
        if not isinstance(columns, dict) or not isinstance(columns.get("accessionNumber"), list):
            reason, msg = "not_a_submissions_file", "no accessionNumber list in filings.recent"
            raise DecodeError(reason, msg)
        columns = {k: v for k, v in columns.items() if isinstance(v, list)}
        cik_text = str(data.get("cik", "")).strip()
        cik = int(cik_text) if cik_text.isdigit() and len(cik_text) <= 10 else cik_of(self.url)
        if cik is None:
            reason, msg = "missing_field", "cik: not in the file nor in the source URL"
            raise DecodeError(reason, msg)
        raw_tickers = data.get("tickers")
        listed = raw_tickers if isinstance(raw_tickers, list) else []
        tickers = [t.upper() for t in listed if isinstance(t, str) and t]
        name = data.get("name")
        return (name if isinstance(name, str) and name else None), cik, tickers, columns

    def _document(
        self,
        row: dict[str, str],
        company: str | None,
        cik: int,
        tickers: list[str],
        fetched_at: datetime,
    ) -> Document:
        accession, form = row.get("accessionNumber", ""), row.get("form", "")
        if not accession_of(accession):
            reason, field = "missing_field", "accessionNumber"
            raise DecodeError(reason, field)
        if not form:
            reason, field = "missing_field", "form"
            raise DecodeError(reason, field)
        items = [item.strip() for item in row.get("items", "").split(",") if item.strip()]
        primary = row.get("primaryDocument", "")
        description = row.get("primaryDocDescription", "")
        labels = [item_label(item) if form.startswith("8-K") else item for item in items]
        lead = lead_item([(item, "") for item in items]) if form.startswith("8-K") else ""
        if not lead and description and description.upper() != form.upper():
            lead = description
        filed_at = iso_date(row.get("filingDate", ""))
        lines = [f"{company or f'CIK {cik}'} filed {form} on {filed_at or 'an unknown date'}."]
        lines += [f"Report date: {row['reportDate']}"] if row.get("reportDate") else []
        lines += [f"Description: {description}"] if description else []
        lines += labels
        url = archive_url(cik, accession, primary) if primary else index_url(cik, accession)
        return filing_document(
            self.name,
            self.kind,
            accession=accession,
            url=url,
            title=filing_title(company or f"CIK {cik}", form, lead),
            body="\n".join(lines)[: self.body_max_chars],
            # acceptanceDateTime ends in Z and is UTC: Tesla's 10-K of 2026-01-29 shows
            # 01:55Z, 20:55 in New York the day before, after the 17:30 cut-off.
            published=edgar_time(row.get("acceptanceDateTime", "")),
            fetched_at=fetched_at,
            tickers=[*tickers, *self.tickers],
            meta={
                "form_type": form,
                "items": items,
                "cik": cik,
                "ciks": [cik],
                "company": company,
                "filed_at": filed_at,
                "report_date": iso_date(row.get("reportDate", "")),
                "primary_document": url if primary else None,
                **legacy_items(form, items),
            },
        )


def _cell(column: list[Any], row: int) -> str:
    """Return one cell of a column as text ("" when the column is short or holds a non-value)."""
    value = column[row] if row < len(column) else None
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return ""
    return str(value).strip()
