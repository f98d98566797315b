"""What the EDGAR parser tests share: one parse, the files, the fields every filing carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.base import Source
from ingest.edgar import EdgarAtomSource, EdgarIndexSource
from ingest.edgar_doc import EdgarDocSource
from ingest.edgar_submissions import EdgarSubmissionsSource
from streams.records import Document, Rejected, stable_id
from tests.parsing import parse_all

EDGAR = "fixtures/edgar"
FETCHED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ARCHIVE = "https://www.sec.gov/Archives/edgar/data"
ALL_FORMS = "getcurrent_all_forms_start0.atom.xml"
TYPE4 = "getcurrent_type4_start0.atom.xml"
OVERFLOW = "submissions_CIK0001009672-submissions-001.json"


def parse(source: Source, raw: bytes) -> tuple[list[Document], list[Rejected]]:
    """Parse bytes fetched at FETCHED; every item must be a Document or a Rejected."""
    return parse_all(source, raw, FETCHED)


def read(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


def common_fields_hold(doc: Document, kind: str) -> None:
    """Check what every filing document carries, whatever its source."""
    assert doc.kind == "filing"
    assert doc.published_at.utcoffset() is not None
    assert doc.doc_id == stable_id("sec", kind, doc.meta["accession"])
    for key in ("form_type", "items", "cik", "ciks", "company", "accession", "filed_at"):
        assert key in doc.meta


def sources() -> list[Source]:
    return [
        EdgarAtomSource("t", "u"),
        EdgarIndexSource("t", "u"),
        EdgarDocSource("t", "u"),
        EdgarSubmissionsSource("t", "u"),
    ]
