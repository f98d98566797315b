"""Near-duplicate detection: the same story from several publishers, reposts, retweets.

Each document's text (title, then the start of the body) becomes a set of word pairs
("shingles") after normalisation: lower case, accents and punctuation dropped, numbers kept.
Pairs rather than longer n-grams, because headlines are short: one changed word in a
14-word headline keeps a similarity of about 0.75. A MinHash signature of 64 values
estimates the Jaccard similarity of two shingle sets; locality-sensitive hashing (16 bands
of 4 rows) finds candidates without comparing every pair. A document whose estimated
similarity to an earlier one within the window reaches the threshold is marked ``dup_of``
that earlier document (the first one seen, so chains collapse onto one original). Texts
too short to shingle (fewer than 2 words) compare on their exact normalised form.

The index is kept in memory, bounded by the time window, and saved to a JSON file between
runs so a restart still recognises yesterday's stories.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import unicodedata
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from infra.files import write_json_atomic
from streams.records import Document

log = logging.getLogger(__name__)

PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
SHINGLE = 2
TEXT_CHARS = 2_000
_WORD = re.compile(r"[a-z0-9]+")
_seeds = np.random.default_rng(20261123)
# Multiply-shift hashing: (a * x + b) mod 2**64 with odd a, keep the high 32 bits.
_A = _seeds.integers(0, 2**63, PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _seeds.integers(0, 2**63, PERMUTATIONS, dtype=np.uint64)


def normal_words(text: str) -> list[str]:
    """Return the lower-case words of a text, accents dropped."""
    folded = unicodedata.normalize("NFKD", text.lower())
    return _WORD.findall(folded.encode("ascii", "ignore").decode("ascii"))


def _hash64(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def signature(text: str) -> tuple[int, ...] | str:
    """Return the MinHash signature of a text, or its normalised form when too short."""
    words = normal_words(text[:TEXT_CHARS])
    if len(words) < SHINGLE:
        return " ".join(words)
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    hashes = np.array([_hash64(s) for s in shingles], dtype=np.uint64)
    mixed = (hashes[:, None] * _A + _B) >> np.uint64(32)  # uint64 arrays wrap silently
    return tuple(int(v) for v in mixed.min(axis=0))


def similarity(a: tuple[int, ...] | str, b: tuple[int, ...] | str) -> float:
    """Estimate the Jaccard similarity of two signatures (exact match for short texts)."""
    if isinstance(a, str) or isinstance(b, str):
        return 1.0 if a == b and a != "" else 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / PERMUTATIONS


@dataclass(frozen=True)
class _Entry:
    doc_id: str
    published_at: datetime
    signature: tuple[int, ...] | str


class NearDuplicates:
    """Find and mark near-duplicate documents within a time window.

    Args:
        window: how far apart in publication time two copies of a story may be.
        threshold: estimated Jaccard similarity from which a document is a duplicate.
        path: JSON file the index is saved to and restored from (None: memory only).
    """

    def __init__(
        self,
        window: timedelta = timedelta(hours=48),
        threshold: float = 0.7,
        path: Path | None = None,
    ) -> None:
        self.window = window
        self.threshold = threshold
        self.path = path
        self._entries: deque[_Entry] = deque()
        self._buckets: dict[tuple[int, int], list[_Entry]] = {}
        self._exact: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            self._restore(path)

    def __len__(self) -> int:
        return len(self._entries)

    def mark(self, doc: Document) -> Document:
        """Return the document, with ``dup_of`` set when it repeats an earlier one."""
        sig = signature(doc.text)
        with self._lock:
            original = self._find(doc, sig)
            self._add(_Entry(doc.doc_id, doc.published_at, sig))
        if original is None or original.doc_id == doc.doc_id or doc.dup_of:
            return doc
        return doc.model_copy(update={"dup_of": original.doc_id})

    def _find(self, doc: Document, sig: tuple[int, ...] | str) -> _Entry | None:
        if isinstance(sig, str):
            candidates = [self._exact[sig]] if sig and sig in self._exact else []
        else:
            seen: dict[str, _Entry] = {}
            for key in _bands(sig):
                for entry in self._buckets.get(key, ()):
                    seen.setdefault(entry.doc_id, entry)
            candidates = list(seen.values())
        near = [
            e
            for e in candidates
            if abs(e.published_at - doc.published_at) <= self.window
            and similarity(sig, e.signature) >= self.threshold
        ]
        return min(near, key=lambda e: e.published_at) if near else None

    def _add(self, entry: _Entry) -> None:
        self._entries.append(entry)
        if isinstance(entry.signature, str):
            if entry.signature:
                self._exact.setdefault(entry.signature, entry)
        else:
            for key in _bands(entry.signature):
                self._buckets.setdefault(key, []).append(entry)
        self._evict(entry.published_at)

    def _evict(self, latest: datetime) -> None:
        # Entries arrive roughly in time order; drop those far behind the newest.
        horizon = latest - 2 * self.window
        while self._entries and self._entries[0].published_at < horizon:
            old = self._entries.popleft()
            if isinstance(old.signature, str):
                if self._exact.get(old.signature) is old:
                    del self._exact[old.signature]
                continue
            for key in _bands(old.signature):
                bucket = self._buckets.get(key, [])
                if old in bucket:
                    bucket.remove(old)
                if not bucket:
                    self._buckets.pop(key, None)

    def save(self) -> None:
        """Write the index to its file atomically (no-op without a path)."""
        if self.path is None:
            return
        with self._lock:
            rows = [[e.doc_id, e.published_at.isoformat(), e.signature] for e in self._entries]
        write_json_atomic(self.path, rows)

    def _restore(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text("utf-8"))
            entries = [
                _Entry(
                    str(doc_id),
                    datetime.fromisoformat(at),
                    sig if isinstance(sig, str) else tuple(int(v) for v in sig),
                )
                for doc_id, at, sig in rows
            ]
        except (OSError, ValueError, TypeError) as exc:
            # The index only improves marking; losing it must not stop ingestion.
            log.warning("near-duplicate index %s unreadable, starting empty: %s", path, exc)
            return
        for entry in entries:
            self._add(entry)


def _bands(sig: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(band, hash(sig[band * ROWS : (band + 1) * ROWS])) for band in range(BANDS)]
