"""Ticker linking against hand labels: precision, recall, the errors, and throughput.

```
.venv/bin/python -m bench.linking [--shared DIR] [--labels PATH] [--seconds 2]
```

Rebuilds each labelled document from its fixture (with the real parsers in ``ingest/`` when
they import, else a minimal parse here), links it with `ingest.tickers.Linker`, and prints
micro precision and recall of (document, ticker) pairs, overall and per source kind. "In
universe" scores only labels the universe knows (delisted symbols can't be linked from a
2025 symbol list). Then every false positive and negative, and documents linked per second.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import yaml

from ingest.text import find_tickers
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.records import Document, stable_id

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "ticker_labels.yaml"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Label:
    """One hand-labelled document: where it is and the tickers an analyst links."""

    kind: str
    file: str
    key: str
    tickers: tuple[str, ...]


@dataclass
class Score:
    """Micro counts of (document, ticker) pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def __str__(self) -> str:
        return (
            f"P={self.precision:.3f} R={self.recall:.3f} (tp={self.tp} fp={self.fp} fn={self.fn})"
        )


@dataclass
class Report:
    """The evaluation of a linker on the labelled sample."""

    overall: Score = field(default_factory=Score)
    in_universe: Score = field(default_factory=Score)
    by_kind: dict[str, Score] = field(default_factory=dict)
    false_pos: list[str] = field(default_factory=list)
    false_neg: list[str] = field(default_factory=list)
    parsers: dict[str, str] = field(default_factory=dict)
    docs: int = 0


def load_labels(path: Path = LABELS) -> list[Label]:
    """Read the hand labels."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Label(d["kind"], d["file"], str(d["key"]), tuple(d["tickers"])) for d in data["documents"]
    ]


def _real(module: str, cls: str) -> Callable[[bytes], Iterable[Any]] | None:
    """Return the parse method of a real source in ``ingest/``, or None when it won't import."""
    try:
        source = getattr(importlib.import_module(module), cls)("bench", "")
    except Exception:  # noqa: BLE001 - another helper's module may be half-written right now
        return None
    return lambda raw: source.parse(raw, _EPOCH)


def _doc(doc_id: str, title: str, body: str, tickers: Sequence[str], kind: str) -> Document:
    return Document(
        doc_id=doc_id,
        source="bench",
        kind="news" if kind in ("rss", "halts") else "social",
        title=title,
        body=body,
        published_at=_EPOCH,
        fetched_at=_EPOCH,
        tickers=tuple(tickers),
    )


def _post(text: str) -> tuple[str, str]:
    return (text, "") if len(text) <= 1000 else (text[:1000], text[1000:])


def _minimal(kind: str, raw: bytes) -> list[Document]:
    """Parse a fixture the simple way: enough to link, nothing more."""
    from ingest.text import clean_text  # noqa: PLC0415

    docs = []
    if kind in ("rss", "halts"):
        for e in feedparser.parse(raw).entries:
            symbols = [str(e[k]) for k in ("sa_symbol", "ndaq_issuesymbol") if e.get(k)]
            doc_id = stable_id("id", e["id"]) if e.get("id") else stable_id("halt", e.title)
            body = clean_text(e.get("summary", ""))
            docs.append(_doc(doc_id, clean_text(e.title), body, symbols, kind))
    elif kind == "stocktwits":
        for m in json.loads(raw)["messages"]:
            symbols = [s["symbol"] for s in m.get("symbols", [])]
            title, body = _post(clean_text(m["body"]))
            docs.append(_doc(stable_id("stocktwits", str(m["id"])), title, body, symbols, kind))
    elif kind == "tweets":
        for line in raw.decode("utf-8").splitlines():
            t = json.loads(line)
            symbols = [s["text"].upper() for s in t.get("entities", {}).get("symbols", [])]
            title, body = _post(clean_text(t["text"]))
            docs.append(_doc(stable_id("tweet", t["id_str"]), title, body, symbols, kind))
    elif kind == "reddit":
        for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
            title, body = _post(clean_text(row["Comment Body"]))
            if title:
                docs.append(_doc(stable_id("reddit", row["Comment ID"]), title, body, (), kind))
    return docs


_PARSERS = {
    "rss": ("ingest.rss", "RssSource"),
    "halts": ("ingest.rss", "RssSource"),
    "stocktwits": ("ingest.stocktwits", "StocktwitsSource"),
    "tweets": ("ingest.tweets", "TweetsSource"),
    "reddit": ("ingest.reddit", "RedditCsvSource"),
}
_ID_PREFIX = {"rss": "id", "stocktwits": "stocktwits", "tweets": "tweet", "reddit": "reddit"}


def _matches(label: Label, doc: Document) -> bool:
    if label.kind == "halts":
        symbol, when = label.key.split("@")
        date, clock = when.split(" ")
        return doc.title == symbol and date in doc.body and clock in doc.body
    return doc.doc_id == stable_id(_ID_PREFIX[label.kind], label.key)


def documents(shared: Path, labels: Sequence[Label]) -> tuple[list[Document], dict[str, str]]:
    """Rebuild the labelled documents, in label order; also say which parser read each kind.

    Raises:
        LookupError: a labelled key is not in its fixture.
    """
    parsed: dict[tuple[str, str], list[Document]] = {}
    used: dict[str, str] = {}
    out = []
    for label in labels:
        if (label.kind, label.file) not in parsed:
            raw = (shared / "fixtures" / label.file).read_bytes()
            real = _real(*_PARSERS[label.kind])
            items = list(real(raw)) if real else _minimal(label.kind, raw)
            used[label.kind] = ".".join(_PARSERS[label.kind]) if real else "minimal"
            parsed[label.kind, label.file] = [d for d in items if isinstance(d, Document)]
        found = [d for d in parsed[label.kind, label.file] if _matches(label, d)]
        if not found:
            msg = f"{label.file}: no document for key {label.key!r}"
            raise LookupError(msg)
        out.append(found[0])
    return out, used


def evaluate(linker: Linker, labels: Sequence[Label], docs: Sequence[Document]) -> Report:
    """Score the linker's tickers against the labels, pair by pair."""
    report = Report(docs=len(docs))
    for label, doc in zip(labels, docs, strict=True):
        linked = linker.link(doc)
        got, want = set(linked.doc.tickers), set(label.tickers)
        known = {t for t in want if t in linker.universe}
        kind = report.by_kind.setdefault(label.kind, Score())
        for score in (report.overall, kind):
            score.tp += len(got & want)
            score.fp += len(got - want)
            score.fn += len(want - got)
        report.in_universe.tp += len(got & known)
        report.in_universe.fp += len(got - want)
        report.in_universe.fn += len(known - got)
        where = f"{label.kind}:{label.key}"
        by = linked.doc.meta["linked_by"]
        report.false_pos += [f"{where} {t} (by {by[t]})" for t in sorted(got - want)]
        report.false_neg += [
            f"{where} {t}{'' if t in known else ' (not in universe)'}" for t in sorted(want - got)
        ]
    return report


def baseline(labels: Sequence[Label], docs: Sequence[Document]) -> Score:
    """Score the naive way on the same pairs: the feed's symbols plus every cashtag and
    exchange prefix, unvalidated (what the pipeline did before the linker)."""
    score = Score()
    for label, doc in zip(labels, docs, strict=True):
        got = set(doc.tickers) | set(find_tickers(f"{doc.title}\n{doc.body}"))
        want = set(label.tickers)
        score.tp += len(got & want)
        score.fp += len(got - want)
        score.fn += len(want - got)
    return score


def throughput(linker: Linker, docs: Sequence[Document], seconds: float) -> float:
    """Return documents linked per second, linking ``docs`` over and over for ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for doc in docs:
            linker.link(doc)
        done += len(docs)
    return done / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    """Run the evaluation and the timing, and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(os.environ.get("SURVEIL_SHARED_DIR", ROOT.parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the parsers log every rejected row

    start = time.perf_counter()
    universe = Universe.load(args.shared)
    load_s = time.perf_counter() - start
    linker = Linker(universe)
    labels = load_labels(args.labels)
    docs, used = documents(args.shared, labels)
    report = evaluate(linker, labels, docs)

    print(f"machine: {platform.platform()}, {platform.processor() or '?'}, {os.cpu_count()} CPUs")
    print(f"universe: loaded in {load_s * 1000:.0f} ms: {universe.counts}")
    print(f"parsers: {used}")
    print(f"labelled documents: {report.docs}, pairs: {sum(len(x.tickers) for x in labels)}")
    print(f"overall      {report.overall}")
    print(f"naive        {baseline(labels, docs)}  (baseline: feed symbols + cashtags)")
    print(f"in universe  {report.in_universe}")
    for kind, score in sorted(report.by_kind.items()):
        print(f"  {kind:<11}{score}")
    print("false positives:", *report.false_pos or ["none"], sep="\n  ")
    print("false negatives:", *report.false_neg or ["none"], sep="\n  ")
    rate = throughput(linker, docs, args.seconds)
    long_text = "\n".join(f"{d.title} {d.body}" for d in docs)
    long_doc = docs[0].model_copy(update={"body": (long_text * 20)[:20_000]})
    long_rate = throughput(linker, [long_doc], args.seconds / 2)
    print(f"throughput: {rate:,.0f} documents/s on the sample; ", end="")
    print(f"{long_rate:,.0f} documents/s with a 20,000-character body")


if __name__ == "__main__":
    main()
