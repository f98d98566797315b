"""The one window engine: a ticker's scored documents in event time, kept as running sums.

A ticker's state is a JSON-ready dict (the alerts agent keeps it in a Faust table)::

    {"end": newest publication time seen (epoch s), "since": oldest one seen,
     "recent": [[start, n, sum, sum_sq, negatives, worst, worst_negative, sources, probes]],
     "buckets": [[start, n, sum, sum_sq, negatives], ...]}

``recent`` covers the horizon (the longest window) in buckets of ``step`` seconds (the
horizon / 120, at least 1 s). Each holds its documents' count, the sum and the sum of
squares of their scores, the number labelled negative, the `EVIDENCE` lowest scores
(``[score, published, doc_id]``) of all and (with ``negative_evidence``) of the negative
ones, the sources, and per
`Probe` (an event type at a probability) ``[documents at or above it, the highest
probability of that event, the EVIDENCE likeliest [probability, published, doc_id, score]]``.
A bucket that leaves the horizon folds into ``buckets``, the baseline, in buckets of
``bucket_s`` (the longest baseline / 720, at least 60 s), kept as far back as ``memory_s``.
So the state has at most about 120 + 720 buckets of bounded size, whatever the rate: an
update costs the same for a quiet ticker and a busy one.

Titles, URLs and sources, and the doc ids that tell a redelivery from a new document, are
not in the state: they go to ``refs``, a second mapping with one entry per recent bucket
(key ``TICKER|start``), read only to show evidence and written once per document. A
bucket counts the first n doc ids of its entry (n its count), so an entry saved ahead of
its state (a crash between the two writes) does not hide the documents it lists.

Definitions (one for every rule):
- A window of W seconds ending at the newest publication time ``end`` is every recent
  bucket that overlaps [end - W, end]: it may hold documents up to one step older.
- The baseline of B seconds before a window that starts at ``start = end - W`` is every
  recent bucket before the window's first one that overlaps [start - B, start), and every
  baseline bucket from start - B on.
- The z-score of a window is (window mean - baseline mean) / (sd / sqrt(n)): n the window's
  documents, sd the baseline's sample standard deviation, at least `MIN_STD`.
A near-duplicate, a redelivery (its doc id already in its bucket) and a document older
than the horizon (too late to tell from a redelivery) change nothing.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streams.records import DocRef, Scored

EVIDENCE = 5
# A baseline of near-identical scores would make any change infinitely surprising.
MIN_STD = 0.05
FINE_BUCKETS = 120
MAX_BUCKETS = 720
TITLE_CHARS = 200

Refs = MutableMapping[str, dict[str, list[str]]]


class Probe(NamedTuple):
    """An event type counted at or above a probability (an event rule's test)."""

    event: str
    probability: float

    @property
    def key(self) -> str:
        """The probe's name in a bucket."""
        return f"{self.event}@{self.probability:g}"


class Entry(NamedTuple):
    """A document kept as evidence: enough to rank it and to look up its title."""

    doc_id: str
    published: float
    score: float
    rank: float  # the score, or an event's probability


class Window(NamedTuple):
    """What a window holds (its evidence comes from `Windows.lowest`, when it is shown)."""

    documents: int
    total: float
    negatives: int
    sources: tuple[str, ...]

    @property
    def mean(self) -> float:
        """The mean score (0 for an empty window)."""
        return self.total / self.documents if self.documents else 0.0


class Events(NamedTuple):
    """What a probe found in a window."""

    matches: int
    top: float
    hits: list[Entry]


class Baseline(NamedTuple):
    """The sums of a baseline, and the time it really covers."""

    n: int
    total: float
    squares: float
    negatives: int
    span_s: float

    @property
    def mean(self) -> float:
        """The baseline's mean score."""
        return self.total / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        """The baseline's sample standard deviation, at least `MIN_STD`."""
        variance = (self.squares - self.total * self.mean) / (self.n - 1) if self.n > 1 else 0.0
        return max(math.sqrt(max(variance, 0.0)), MIN_STD)


def zscore(window: Window, base: Baseline) -> float:
    """The window mean's z-score against the baseline (see the module's definitions)."""
    return (window.mean - base.mean) / (base.std / math.sqrt(window.documents))


class Windows:
    """Keep tickers' windows and baselines as bucketed sums.

    Args:
        horizon_s: the longest window a reader asks for.
        baseline_s: the longest baseline a reader asks for (0: none).
        memory_s: how far back baselines reach (the longest window plus its baseline).
        probes: the event tests to count per bucket.
        negative_evidence: whether to keep the lowest negative documents apart (for
            `lowest(..., negative=True)`).
    """

    def __init__(
        self,
        horizon_s: float,
        baseline_s: float = 0.0,
        memory_s: float = 0.0,
        probes: Iterable[Probe] = (),
        negative_evidence: bool = False,
    ) -> None:
        self.negative_evidence = negative_evidence
        self.horizon_s = float(horizon_s)
        self.memory_s = float(memory_s)
        self.step = float(max(1, math.ceil(self.horizon_s / FINE_BUCKETS)))
        self.bucket_s = float(max(60, math.ceil(baseline_s / MAX_BUCKETS)))
        self.probes = tuple(sorted(set(probes)))

    @staticmethod
    def empty() -> dict[str, Any]:
        """A ticker's state before its first document."""
        return {"end": None, "since": None, "recent": [], "buckets": []}

    def add(self, state: dict[str, Any], rec: Scored, refs: Refs) -> dict[str, Any] | None:
        """Add one scored document; return the new state, or None when it changes nothing.

        Args:
            state: the ticker's state (`empty` or ``{}`` for a new one); not changed.
            rec: the document, of that ticker.
            refs: the titles and doc ids of the recent buckets (changed in place).
        """
        if rec.dup_of:
            return None
        ts = rec.published_at.timestamp()
        end = max(ts, _float(state.get("end"), ts))
        key = self._key(ts)
        if key + self.step <= end - self.horizon_s:
            return None
        recent = {int(b[0]): b for b in state.get("recent") or []}
        ref_key = f"{rec.ticker}|{key}"
        seen = refs.get(ref_key) or {}
        ref = [rec.title[:TITLE_CHARS], rec.url, rec.source]
        # The bucket counts the first n documents of its entry: one written ahead of its
        # state (a crash between the two writes) holds more, which do not count yet.
        n = recent[key][1] if key in recent else 0
        # Lookups by key, never a scan of a list: a busy bucket holds thousands of documents.
        if len(seen) <= n:  # the usual entry: every document in it counts
            if rec.doc_id in seen:
                return None
            entry = {**seen, rec.doc_id: ref}
        else:
            order = list(seen)
            if rec.doc_id in set(order[:n]):
                return None
            entry = {k: seen[k] for k in order[:n]}
            entry[rec.doc_id] = ref
            entry.update((k, seen[k]) for k in order[n:] if k != rec.doc_id)
        refs[ref_key] = entry
        recent[key] = self._added(recent.get(key), key, rec, ts)
        buckets = {int(b[0]): list(b[1:]) for b in state.get("buckets") or []}
        for start in sorted(recent):
            if start + self.step > end - self.horizon_s:
                break
            old = recent.pop(start)
            refs.pop(f"{rec.ticker}|{start}", None)
            if self.memory_s:
                self._fold(buckets, old)
        forget = end - self.memory_s - self.bucket_s
        return {
            "end": end,
            "since": min(ts, _float(state.get("since"), ts)),
            "recent": [recent[k] for k in sorted(recent)],
            "buckets": [[k, *v] for k, v in sorted(buckets.items()) if k > forget],
        }

    def window(self, state: dict[str, Any], window_s: float) -> Window:
        """Return what the window of ``window_s`` seconds up to the newest document holds."""
        n, total, negatives = 0, 0.0, 0
        sources: set[str] = set()
        for b in self._recent(state, window_s):
            n, total, negatives = n + b[1], total + b[2], negatives + b[4]
            sources.update(b[7])
        return Window(n, total, negatives, tuple(sorted(sources)))

    def lowest(self, state: dict[str, Any], window_s: float, negative: bool = False) -> list[Entry]:
        """Return the `EVIDENCE` lowest-scored documents of the window (of the negative ones).

        Raises:
            ValueError: ``negative`` on an engine built without ``negative_evidence``.
        """
        if negative and not self.negative_evidence:
            msg = "this window engine keeps no evidence of negative documents"
            raise ValueError(msg)
        column = 6 if negative else 5
        found = heapq.nsmallest(
            EVIDENCE,
            (e for b in self._recent(state, window_s) for e in b[column]),
            key=lambda e: (e[0], -e[1], e[2]),
        )
        return [Entry(d, t, s, s) for s, t, d in found]

    def events(self, state: dict[str, Any], window_s: float, probe: Probe) -> Events:
        """Return what a probe found in the window of ``window_s`` seconds."""
        count, top = 0, 0.0
        hits: list[Entry] = []
        for b in self._recent(state, window_s):
            found = b[8].get(probe.key)
            if found:
                count, top = count + found[0], max(top, found[1])
                hits += [Entry(d, t, s, p) for p, t, d, s in found[2]]
        hits.sort(key=lambda e: (-e.rank, -e.published, e.doc_id))
        return Events(count, top, hits[:EVIDENCE])

    def baseline(self, state: dict[str, Any], window_s: float, baseline_s: float) -> Baseline:
        """Sum the baseline of ``baseline_s`` seconds before the window of ``window_s``."""
        end = _float(state.get("end"), 0.0)
        start = end - window_s
        low = start - baseline_s
        first = self._key(start)
        n, total, squares, negatives = 0, 0.0, 0.0, 0
        for key, b_n, b_total, b_squares, b_negatives in state.get("buckets") or []:
            if key >= low:
                n, total, squares = n + b_n, total + b_total, squares + b_squares
                negatives += b_negatives
        for b in state.get("recent") or []:
            if b[0] + self.step > low and b[0] < first:
                n, total, squares, negatives = (
                    n + b[1],
                    total + b[2],
                    squares + b[3],
                    negatives + b[4],
                )
        since = _float(state.get("since"), start)
        return Baseline(n, total, squares, negatives, max(0.0, start - max(low, since)))

    def docrefs(self, ticker: str, entries: Iterable[Entry], refs: Refs) -> tuple[DocRef, ...]:
        """Turn evidence into document references, with their titles from ``refs``."""
        out = []
        for e in entries:
            title, url, source = (refs.get(f"{ticker}|{self._key(e.published)}") or {}).get(
                e.doc_id, ["", "", ""]
            )
            out.append(
                DocRef(
                    doc_id=e.doc_id,
                    title=title,
                    url=url,
                    source=source,
                    published_at=datetime.fromtimestamp(e.published, UTC),
                    score=e.score,
                )
            )
        return tuple(out)

    def _key(self, ts: float) -> int:
        return int(ts // self.step * self.step)

    def _recent(self, state: dict[str, Any], window_s: float) -> list[list[Any]]:
        low = self._key(_float(state.get("end"), 0.0) - window_s)
        return [b for b in state.get("recent") or [] if b[0] >= low]

    def _added(self, bucket: list[Any] | None, key: int, rec: Scored, ts: float) -> list[Any]:
        _, n, total, squares, negatives, worst, worst_neg, sources, probes = bucket or [
            key,
            0,
            0.0,
            0.0,
            0,
            [],
            [],
            [],
            {},
        ]
        negative = rec.label == "negative"
        entry = [rec.score, ts, rec.doc_id]
        probes = dict(probes)
        for probe in self.probes:
            if rec.event_type == probe.event:
                count, top, hits = probes.get(probe.key) or [0, 0.0, []]
                if rec.event_prob >= probe.probability:
                    hit = [rec.event_prob, ts, rec.doc_id, rec.score]
                    hits = sorted([*hits, hit], key=lambda h: (-h[0], -h[1], h[2]))[:EVIDENCE]
                    count += 1
                probes[probe.key] = [count, max(top, rec.event_prob), hits]
        return [
            key,
            n + 1,
            total + rec.score,
            squares + rec.score * rec.score,
            negatives + negative,
            _keep_lowest([*worst, entry]),
            _keep_lowest([*worst_neg, entry]) if negative and self.negative_evidence else worst_neg,
            sorted({*sources, rec.source}),
            probes,
        ]

    def _fold(self, buckets: dict[int, list[Any]], b: list[Any]) -> None:
        key = int(b[0] // self.bucket_s * self.bucket_s)
        n, total, squares, negatives = buckets.get(key, [0, 0.0, 0.0, 0])
        buckets[key] = [n + b[1], total + b[2], squares + b[3], negatives + b[4]]


def _float(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _keep_lowest(entries: list[list[Any]]) -> list[list[Any]]:
    return sorted(entries, key=lambda e: (e[0], -e[1], e[2]))[:EVIDENCE]
