"""Which documents of docs.raw a replay runs, in which order, and on which clock.

By publication time (``published``): every partition from its beginning to its end offsets
at the start, keeping the documents whose ``published_at`` is in the range. By Kafka
timestamp (``ingested``): from the first offset at the range's start in every partition.
Either way one fixed order, (Kafka timestamp, partition, offset), so every replay sees one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from infra.errors import BrokerError
from streams.ranges import Message, TopicRange
from streams.records import Document
from streams.steps import Where, decode
from surveil.replay.runs import moment

Selection = Literal["published", "ingested"]
SELECTIONS: tuple[Selection, ...] = ("published", "ingested")


def read_range(
    bootstrap: str, topic: str, start: datetime | None = None, end: datetime | None = None
) -> list[Message]:
    """Return a topic's records with Kafka timestamps in [start, end), in the replay's order.

    Without a range, every record up to the end offsets at the start.

    Raises:
        BrokerError: Kafka failed or the topic does not exist.
    """
    lo = 0 if start is None else int(start.timestamp() * 1000)
    hi = 2**63 - 1 if end is None else int(end.timestamp() * 1000)
    with TopicRange(bootstrap, topic, client_id="surveil-replay") as reader:
        if not reader.partitions():
            msg = f"topic {topic} does not exist"
            raise BrokerError(msg)
        ends = reader.ends()
        first = reader.beginnings() if start is None else reader.at(start)
        records = [m for m in reader.read(first, ends) if lo <= m.timestamp < hi]
    records.sort(key=lambda m: (m.timestamp, m.partition, m.offset))
    return records


def documents(records: Iterable[Message]) -> tuple[list[tuple[Message, Document]], int]:
    """Decode records into documents (with the record each came from); count the rejects.

    The live classify agent dead-lettered the rejects already: a replay only counts them.
    """
    out: list[tuple[Message, Document]] = []
    rejected = 0
    for m in records:
        where = Where(partition=m.partition, offset=m.offset)
        oks, errs = decode([(_value(m.value), where)], Document, "replay")
        out += [(m, doc) for doc in oks]
        rejected += len(errs)
    return out, rejected


def select(
    records: list[Message], start: datetime, end: datetime, by: Selection
) -> tuple[list[tuple[int, Document]], int]:
    """Return the documents to replay, each with its pacing clock (ms), and the rejected count.

    The pacing clock is the Kafka timestamp, or by publication the latest publication time
    so far: records keep their Kafka order, and a clock that never goes back paces them.
    """
    decoded, rejected = documents(records)
    seen: set[str] = set()
    docs: list[tuple[int, Document]] = []
    latest = 0
    for message, doc in decoded:
        if doc.doc_id in seen or (by == "published" and not start <= doc.published_at < end):
            continue
        seen.add(doc.doc_id)
        latest = max(latest, int(doc.published_at.timestamp() * 1000))
        docs.append((message.timestamp if by == "ingested" else latest, doc))
    return docs, rejected


def nothing_selected(
    topic: str, start: datetime, end: datetime, by: Selection, records: list[Message]
) -> str:
    """Say that [start, end) selects nothing, and what the topic holds instead."""
    held: dict[str, tuple[datetime, datetime]] = {}
    for message, doc in documents(records)[0]:
        taken = datetime.fromtimestamp(message.timestamp / 1000, UTC)
        held.setdefault(doc.doc_id, (doc.published_at, taken))
    told = f"no documents {by} in [{moment(start)}, {moment(end)}) UTC: "
    if not held:
        return f"{told}{topic} holds no documents"
    published = sorted(p for p, _ in held.values())
    ingested = sorted(i for _, i in held.values())
    told += (
        f"{topic} holds {len(held)} documents published {_between(published[0], published[-1])}, "
        f"ingested {_between(ingested[0], ingested[-1])}"
    )
    other: Selection = "ingested" if by == "published" else "published"
    there = sum(start <= (i if other == "ingested" else p) < end for p, i in held.values())
    if there:
        told += f"; {there} were {other} in that range (--by {other})"
    return told


def _value(raw: bytes | None) -> Any:
    """A record's value as the worker's JSON deserializer gives it (text when not JSON)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _between(first: datetime, last: datetime) -> str:
    # Seconds only where minutes would say "01:10 to 01:10".
    clock = "%H:%M:%S" if last - first < timedelta(minutes=1) else "%H:%M"
    shown = f"{last:{clock}}" if first.date() == last.date() else f"{last:%Y-%m-%d {clock}}"
    return f"{first:%Y-%m-%d {clock}} to {shown} UTC"
