"""Every recorded fixture, served over loopback HTTP with faults, fetched politely and parsed.

Each file's first request meets a fault in turn (429 with Retry-After, a 500, a slow body, or
none); the fetcher must get through it, the parser must give the expected documents, and a
second fetch must be a 304 with the validators committed after the first.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingest.base import split
from ingest.config import make_source
from ingest.http import Fetcher
from ingest.state import IngestState
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.records import Document, utcnow


@dataclass(frozen=True)
class Expect:
    """What one fixture file must give: counts, and fields of chosen documents."""

    kind: str
    documents: int
    rejected: int = 0
    reasons: tuple[str, ...] = ()
    forms: dict[str, int] = field(default_factory=dict)
    items: tuple[str, ...] | None = None
    tickers: tuple[str, ...] | None = None  # linked tickers of the (first) document


ATOM_FORMS = {"4": 18, "424B2": 18, "D": 8, "13F-HR": 6, "497K": 5, "D/A": 3, "8-K": 1}
EXPECT: dict[str, Expect] = {
    "feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml": Expect("rss", 30),
    "feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml": Expect("rss", 14),
    "social/stocktwits_streams_symbol_AAPL_2020-04-24.json": Expect("stocktwits", 30),
    "social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl": Expect("tweets", 33),
    "social/reddit_wsb_comments_2024-10-11.csv": Expect("reddit-csv", 1968, 7, ("empty_text",)),
    "edgar/getcurrent_all_forms_start0.atom.xml": Expect("edgar-atom", 73, forms=ATOM_FORMS),
    "edgar/getcurrent_type4_start0.atom.xml": Expect("edgar-atom", 46, forms={"4": 46}),
    "edgar/nvda_8k_0001045810-26-000024-index.html": Expect(
        "edgar-index", 1, items=("5.02", "9.01"), tickers=("NVDA",)
    ),
    "edgar/adbe_8k_0000796343-23-000044-index.html": Expect(
        "edgar-index", 1, items=("2.02", "9.01"), tickers=("ADBE",)
    ),
    "edgar/blk_8k_0001193125-23-048785-index.html": Expect("edgar-index", 1, items=("5.02",)),
    "edgar/jwn_8k_0000072333-23-000015-index.html": Expect(
        "edgar-index", 1, items=("5.02", "9.01")
    ),
    "edgar/aapl_corresp_0000000000-24-005673-index.html": Expect(
        "edgar-index", 1, items=(), tickers=("AAPL",)
    ),
    "edgar/nvda_8k_nvda-20260302.htm": Expect("edgar-doc", 1, items=("5.02", "9.01")),
    "edgar/nvda_8k_0001045810-26-000024.txt": Expect(
        "edgar-doc", 1, items=("5.02", "9.01"), tickers=("NVDA",)
    ),
    "edgar/adbe_8k_adbe-20230315.htm": Expect("edgar-doc", 1, items=("2.02", "9.01")),
    "edgar/blk_8k_d435686d8k.htm": Expect("edgar-doc", 1, items=("5.02",)),
    "edgar/blk_8k_0001193125-23-048785.txt": Expect("edgar-doc", 1, items=("5.02",)),
    "edgar/jwn_8k_jwn-20230301.htm": Expect("edgar-doc", 1, items=("5.02", "9.01")),
    "edgar/oracle_8k.html": Expect("edgar-doc", 1, items=("5.07",)),
    "edgar/1800flowers_8k.html": Expect("edgar-doc", 1, items=("5.07",)),
    "edgar/legacy_8k_0001104659-03-004925.html": Expect("edgar-doc", 1, items=("9",)),
    "edgar/buckle_8k_ex99-1_press_release.html": Expect("edgar-doc", 1),
    "edgar/badform.idx.txt": Expect("edgar-doc", 0, 1, ("not_a_filing_document",)),
    "edgar/index-headers_example.html": Expect("edgar-index", 0, 1, ("not_a_filing_index",)),
    "edgar/filing_dir_0001213900-24-004875-index.json": Expect(
        "edgar-index", 0, 1, ("not_a_filing_index",)
    ),
    "edgar/submissions_CIK0000789019_MSFT.json": Expect(
        "edgar-submissions", 1006, forms={"4": 732, "8-K": 67, "10-Q": 20, "10-K": 6}
    ),
    "edgar/submissions_CIK0001318605_TSLA.json": Expect("edgar-submissions", 1000),
    "edgar/submissions_CIK0001800903_small.json": Expect("edgar-submissions", 1, forms={"D": 1}),
    "edgar/submissions_CIK0001009672-submissions-001.json": Expect("edgar-submissions", 205),
}
FAULTS = ("429", "500", "slow", "none")


def test_every_fixture_file_is_covered(shared_dir: Path) -> None:
    sources = {
        str(p.relative_to(shared_dir / "fixtures"))
        for folder in ("feeds", "social", "edgar")
        for p in (shared_dir / "fixtures" / folder).iterdir()
    }
    # company_tickers.json is the CIK -> ticker map the linker loads, not a document source.
    assert sources - set(EXPECT) == {"edgar/company_tickers.json"}


@dataclass
class Served:
    url: str
    hits: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def served(shared_dir: Path) -> Iterator[Served]:
    root = shared_dir / "fixtures"
    faults = {f"/{rel}": FAULTS[i % len(FAULTS)] for i, rel in enumerate(sorted(EXPECT))}
    state = Served("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            first = state.hits[self.path] == 1
            fault = faults.get(self.path, "none")
            if first and fault == "429":
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.end_headers()
                return
            if first and fault == "500":
                self.send_error(500)
                return
            body = (root / self.path.lstrip("/")).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault == "slow":
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                time.sleep(0.3)
                body = body[half:]
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def linker(shared_dir: Path) -> Linker:
    return Linker(Universe.load(shared_dir))


@pytest.mark.parametrize("rel", sorted(EXPECT))
def test_fixture_over_http(rel: str, served: Served, linker: Linker, tmp_path: Path) -> None:
    expect = EXPECT[rel]
    slept: list[float] = []
    with (
        IngestState(tmp_path / "state.db") as state,
        Fetcher(
            user_agent="surveil-tests ops@example.com",
            timeout=5.0,
            validators=state,
            backoff=0.01,
            sleep=slept.append,
        ) as fetcher,
    ):
        fetched = fetcher.get(f"{served.url}/{rel}")
        fetcher.commit(fetched)
        again = fetcher.get(f"{served.url}/{rel}")
    assert fetched.status == 200 and again.not_modified and again.body == b""
    fault = FAULTS[sorted(EXPECT).index(rel) % len(FAULTS)]
    assert fetched.attempts == (2 if fault in ("429", "500") else 1)
    if fault == "429":
        assert max(slept) == pytest.approx(1.0)  # Retry-After honoured

    batch = split(make_source(expect.kind, "t", rel).parse(fetched.body, utcnow()))
    assert (len(batch.documents), len(batch.rejected)) == (expect.documents, expect.rejected)
    assert tuple(sorted({r.reason for r in batch.rejected})) == expect.reasons
    docs = [linker.link(d).doc for d in batch.documents]
    assert all(d.published_at.utcoffset() is not None for d in docs)
    if expect.forms:
        forms = Counter(d.meta["form_type"] for d in docs)
        assert {f: forms[f] for f in expect.forms} == expect.forms
    if expect.items is not None:
        assert tuple(docs[0].meta["items"]) == expect.items
    if expect.tickers is not None:
        assert docs[0].tickers[: len(expect.tickers)] == expect.tickers
    _check_kind(expect.kind, docs)


def _check_kind(kind: str, docs: list[Document]) -> None:
    kinds = {"rss": "news", "stocktwits": "social", "tweets": "social", "reddit-csv": "social"}
    assert {d.kind for d in docs} <= {kinds.get(kind, "filing")}
    assert len({d.doc_id for d in docs}) == len(docs)  # ids are unique within a file
