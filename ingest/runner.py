"""One ingest run of a source: fetch, parse, link, deduplicate, produce, then remember.

The order is what makes a restart safe:

1. fetch politely (conditional GET; the validators are not saved yet);
2. parse into documents and rejects;
3. drop documents already sent (the ingest state's seen ids), link and validate the tickers
   of the new ones (a declared symbol missing from today's lists is kept as unlisted; one
   that is no ticker at all is dead-lettered and the document goes on without it) and mark
   near-duplicates;
4. produce to docs.raw and docs.dlq and wait for every acknowledgement;
5. only then record the ids as seen, save the Kafka checkpoint (docs.raw end offsets) and
   the feed's validators.

A crash before step 4 completes loses nothing: nothing is marked seen and the validators
are old, so the next run fetches and sends again. A crash after step 4 and before step 5
would send again, so `Ingestor.recover` reads docs.raw from the last checkpoint at start
and marks what is already there as seen. Within one ingestor, runs of different sources may
overlap (scheduler threads); steps 3 to 5 hold one lock so that the checkpoint always
follows the seen ids.

Each run logs one line (`summary`): WARNING when it dead-lettered something, INFO otherwise,
ERROR when it failed. What each reject or unlisted symbol was is logged at DEBUG, and every
reject is on docs.dlq with its reason and payload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.errors import ConfigError, SourceError, StateError
from infra.files import write_json_atomic
from ingest.base import Source, reject, split
from ingest.dedup import NearDuplicates
from ingest.state import IngestState
from ingest.tickers import Linked
from streams.counters import Counters
from streams.records import Document, Rejected, stable_id, utcnow

log = logging.getLogger(__name__)

SEEN = "docs"  # one namespace of seen ids: the same story from two feeds is one document
SEEN_REJECTS = "dlq"
SAMPLE = 8  # symbols named in a run's summary line; the rest are counted


class Fetched(Protocol):
    """What the fetcher returns (see `ingest.http.Fetched`)."""

    @property
    def body(self) -> bytes: ...
    @property
    def not_modified(self) -> bool: ...
    @property
    def status(self) -> int: ...


class Fetcher(Protocol):
    """Fetches URLs politely; ``commit`` saves a response's validators."""

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Any: ...
    def commit(self, fetched: Any) -> None: ...


class Linker(Protocol):
    """Links and validates a document's tickers (see `ingest.tickers.Linker`)."""

    def link(self, doc: Document) -> Linked: ...


class Producer(Protocol):
    """Sends documents and rejects and waits for the acknowledgements."""

    def publish(self, documents: Iterable[Document], rejected: Iterable[Rejected] = ()) -> Any: ...


class Reader(Protocol):
    """Reads docs.raw back (see `ingest.producer.TopicReader`)."""

    def end_offsets(self) -> dict[int, int]: ...
    def keys_since(self, start: dict[int, int]) -> set[str]: ...


@dataclass
class RunResult:
    """What one run of one source did.

    Attributes:
        reasons: rejects sent to docs.dlq this run, by reason.
        repeated: rejects dead-lettered by an earlier run, not sent again.
        unknown: the symbols dead-lettered as ``unknown_ticker``, first seen first.
        unlisted: the symbols kept as unlisted (missing from today's lists), first seen first.
    """

    source: str
    documents: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    rejected: int = 0
    not_modified: bool = False
    error: str | None = None
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    repeated: int = 0
    unknown: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)


def summary(result: RunResult) -> str:
    """Say in one line what a run did, naming a few of the symbols it kept or dead-lettered."""
    if result.error:
        return f"{result.source}: failed: {result.error}"
    if result.not_modified:
        return f"{result.source}: not modified"
    parts = [f"{result.documents} new documents"]
    if result.duplicates:
        parts.append(f"{result.duplicates} already sent")
    if result.near_duplicates:
        parts.append(f"{result.near_duplicates} near-duplicates")
    if result.unlisted:
        parts.append(f"{len(result.unlisted)} unlisted tickers kept ({_sample(result.unlisted)})")
    dead = []
    for reason, count in sorted(result.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        symbols = f" ({_sample(result.unknown)})" if reason == "unknown_ticker" else ""
        dead.append(f"{count} {reason}{symbols}")
    if dead:
        parts.append(f"dead-lettered {', '.join(dead)}")
    if result.repeated:
        parts.append(f"{result.repeated} rejects already dead-lettered, not sent again")
    return f"{result.source}: {', '.join(parts)}"


def _sample(symbols: Sequence[str]) -> str:
    shown = ", ".join(symbols[:SAMPLE])
    more = len(symbols) - SAMPLE
    return f"{shown} ... and {more} more" if more > 0 else shown


class Checkpoint:
    """The end offsets of docs.raw after the last completed run, in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[int, int] | None:
        """Return the saved offsets, or None when there are none yet.

        Raises:
            StateError: the file exists but cannot be read (never guess offsets).
        """
        if not self.path.is_file():
            return None
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return {int(p): int(o) for p, o in data["offsets"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = f"ingest checkpoint {self.path} is unreadable: {exc}"
            raise StateError(msg) from exc

    def save(self, offsets: Mapping[int, int]) -> None:
        """Write the offsets atomically."""
        payload = {"offsets": {str(p): o for p, o in offsets.items()}, "saved_at": str(utcnow())}
        write_json_atomic(self.path, payload)


@dataclass(kw_only=True)
class Ingestor:
    """Runs sources once each call, safely against crashes and restarts.

    Args:
        fetcher: the polite HTTP fetcher.
        state: seen ids, validators and the run log.
        linker: ticker linking and validation (None: keep the parser's tickers).
        producer: the Kafka producer of docs.raw and docs.dlq.
        reader: reads docs.raw back for recovery.
        checkpoint: where the docs.raw end offsets are kept.
        near_duplicates: the near-duplicate index (None: no marking).
        counters: named counters (``ingest.*``).
        headers: extra request headers per source name.
    """

    fetcher: Fetcher
    state: IngestState
    producer: Producer
    reader: Reader
    checkpoint: Checkpoint
    linker: Linker | None = None
    near_duplicates: NearDuplicates | None = None
    counters: Counters = field(default_factory=Counters)
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def recover(self) -> int:
        """Mark what reached docs.raw since the last checkpoint as seen; return how many.

        On a first start (no checkpoint) the current end becomes the checkpoint.
        """
        with self._lock:
            start = self.checkpoint.load()
            if start is None:
                self.checkpoint.save(self.reader.end_offsets())
                return 0
            keys = sorted(self.reader.keys_since(start))
            if keys:
                self.state.mark_seen(SEEN, keys, utcnow())
            self.checkpoint.save(self.reader.end_offsets())
        if keys:
            log.info("recovery: %d documents found on docs.raw since the checkpoint", len(keys))
        self.counters.inc("ingest.recovered", len(keys))
        return len(keys)

    def run(self, source: Source) -> RunResult:
        """Fetch, parse and send one source once; never raises for a bad source."""
        started, clock = utcnow(), time.monotonic()
        result = RunResult(source.name)
        try:
            self._run(source, result)
        except (SourceError, ConfigError) as exc:
            # A fetch that failed after its retries, or a source that cannot be fetched as
            # configured: dead-letter it and keep the schedule going.
            result.error = str(exc)
            self.counters.inc("ingest.fetch_errors")
            reason = _fetch_reason(exc)
            self._send_rejects([reject(source.name, reason, str(exc), source.url)])
            result.rejected += 1
            result.reasons[reason] = 1
            log.error("%s (dead-lettered as %s)", summary(result), reason)
        except Exception as exc:
            # A bug in a parser or a broker outage must not stop the other sources.
            log.exception("%s: run failed", source.name)
            result.error = f"{type(exc).__name__}: {exc}"
            self.counters.inc("ingest.run_errors")
        else:
            log.log(logging.WARNING if result.rejected else logging.INFO, "%s", summary(result))
        result.seconds = time.monotonic() - clock
        self.state.record_run(
            source.name, started, utcnow(), result.documents, result.rejected, result.error
        )
        self.counters.inc("ingest.runs")
        return result

    def _run(self, source: Source, result: RunResult) -> None:
        fetched = self.fetcher.get(source.url, self.headers.get(source.name))
        if fetched.not_modified:
            result.not_modified = True
            self.counters.inc("ingest.not_modified")
            return
        batch = split(source.parse(fetched.body, utcnow()))
        with self._lock:
            fresh = self._fresh(batch.documents)
            result.duplicates = len(batch.documents) - len(fresh)
            # Only new documents are linked, so an unknown symbol is dead-lettered once.
            fresh, rejects, unknown = self._link(fresh, batch.rejected, result)
            if self.near_duplicates is not None:
                fresh = [self.near_duplicates.mark(doc) for doc in fresh]
            result.near_duplicates = sum(doc.dup_of is not None for doc in fresh)
            all_rejects = len(rejects)
            rejects = self._fresh_rejects(rejects)
            result.repeated = all_rejects - len(rejects)
            self.producer.publish(fresh, rejects)
            now = utcnow()
            self.state.mark_seen(SEEN, [doc.doc_id for doc in fresh], now)
            self.state.mark_seen(SEEN_REJECTS, [_reject_id(r) for r in rejects], now)
            self.checkpoint.save(self.reader.end_offsets())
            if self.near_duplicates is not None:
                self.near_duplicates.save()
        self.fetcher.commit(fetched)
        result.documents, result.rejected = len(fresh), len(rejects)
        self.counters.inc("ingest.documents", len(fresh))
        self.counters.inc("ingest.duplicates", result.duplicates)
        self.counters.inc("ingest.near_duplicates", result.near_duplicates)
        self.counters.inc(
            "ingest.unlisted", sum(len(doc.meta.get("unlisted", ())) for doc in fresh)
        )
        for rej in rejects:
            self.counters.inc(f"ingest.rejected.{rej.reason}")
            result.reasons[rej.reason] = result.reasons.get(rej.reason, 0) + 1
            if (symbol := unknown.get(_reject_id(rej))) and symbol not in result.unknown:
                result.unknown.append(symbol)

    def _link(
        self, documents: list[Document], rejects: list[Rejected], result: RunResult
    ) -> tuple[list[Document], list[Rejected], dict[str, str]]:
        """Link the documents; return them, the rejects and each unknown_ticker reject's symbol."""
        if self.linker is None:
            return documents, rejects, {}
        linked_docs, out, unknown = [], list(rejects), {}
        for doc in documents:
            linked = self.linker.link(doc)
            linked_docs.append(linked.doc)
            for symbol in linked.unknown:
                detail = f"{symbol!r} is not a known ticker (document {doc.doc_id}: {doc.url})"
                rej = reject(doc.source, "unknown_ticker", detail, doc.model_dump_json())
                unknown[_reject_id(rej)] = symbol
                out.append(rej)
            for symbol in linked.unlisted:
                log.debug("%s: %r kept as unlisted (document %s)", doc.source, symbol, doc.doc_id)
                if symbol not in result.unlisted:
                    result.unlisted.append(symbol)
        return linked_docs, out, unknown

    def _fresh(self, documents: list[Document]) -> list[Document]:
        unique: dict[str, Document] = {}
        for doc in documents:
            unique.setdefault(doc.doc_id, doc)
        keep = set(self.state.unseen(SEEN, list(unique)))
        return [doc for doc_id, doc in unique.items() if doc_id in keep]

    def _fresh_rejects(self, rejects: list[Rejected]) -> list[Rejected]:
        # A feed that keeps one broken entry would otherwise dead-letter it on every run.
        by_id = {_reject_id(r): r for r in rejects}
        keep = set(self.state.unseen(SEEN_REJECTS, list(by_id)))
        return [r for rid, r in by_id.items() if rid in keep]

    def _send_rejects(self, rejects: list[Rejected]) -> None:
        try:
            self.producer.publish([], rejects)
        except Exception:
            log.exception("could not dead-letter %d rejects", len(rejects))
            self.counters.inc("ingest.dlq_errors")


def _reject_id(rej: Rejected) -> str:
    return stable_id("reject", rej.source, rej.reason, rej.detail, rej.payload)


_FETCH_REASONS = {"too_large": "response_too_large", "timeout": "fetch_timeout"}


def _fetch_reason(exc: SourceError | ConfigError) -> str:
    """Return the dead-letter reason of a failed fetch, from the error's own reason."""
    if isinstance(exc, ConfigError):
        return "source_misconfigured"
    return _FETCH_REASONS.get(exc.reason, "fetch_failed")
