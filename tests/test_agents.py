"""Agent logic with Faust's test_context: a list in, a list out, no broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from faust.streams import current_event

from models.base import TextScore
from streams import classify, steps
from streams.acks import each
from streams.app import WorkerConfig, create_pipeline
from streams.records import Rejected, Scored
from tests.records import document


class FixedModel:
    """A stand-in model: negative when the text says 'loss', neutral otherwise."""

    version = "fixed-1"

    def classify(self, texts: list[str]) -> list[TextScore]:
        return [TextScore((0.8, 0.1, 0.1) if "loss" in t else (0.1, 0.8, 0.1)) for t in texts]


class Collected:
    def __init__(self) -> None:
        self.scored: list[Scored] = []
        self.rejected: list[Rejected] = []

    async def write(self, scored: Sequence[Scored], rejected: Sequence[Rejected]) -> None:
        self.scored.extend(scored)
        self.rejected.extend(rejected)


def _doc(doc_id: str, title: str, tickers: tuple[str, ...]) -> dict[str, object]:
    return document(doc_id, title, tickers).to_json()


def _run(values: list[object], tmp_path: Path) -> Collected:
    pipeline = create_pipeline(
        WorkerConfig(data_dir=tmp_path, store="memory://", classify_within=0.05)
    )
    got = Collected()
    agent = classify.register(pipeline, FixedModel(), got)

    async def main() -> None:
        async with agent.test_context() as test_agent:
            for value in values:
                await test_agent.put(value)
            await asyncio.sleep(0.3)  # let the take() window close

    asyncio.run(main())
    return got


def test_classify_gives_one_record_per_document_and_ticker(tmp_path: Path) -> None:
    got = _run(
        [
            _doc("doc-00001", "Contoso $CNTS posts a loss", ("CNTS", "FABR")),
            _doc("doc-00002", "Fabrikam holds meeting", ("FABR",)),
        ],
        tmp_path,
    )
    assert [(s.doc_id, s.ticker, s.label) for s in got.scored] == [
        ("doc-00001", "CNTS", "negative"),
        ("doc-00001", "FABR", "negative"),
        ("doc-00002", "FABR", "neutral"),
    ]
    assert got.scored[0].score == 0.8 * -1 + 0.1
    assert [s.relevance for s in got.scored] == [1.0, 0.5, 0.5]
    assert got.rejected == []


def test_classify_dead_letters_invalid_documents_with_the_field_at_fault(tmp_path: Path) -> None:
    bad = _doc("doc-00003", "no date", ("CNTS",))
    del bad["published_at"]
    got = _run([bad, "not an object", _doc("doc-00004", "fine", ())], tmp_path)
    assert got.scored == []  # the valid document has no ticker to score
    assert [r.reason for r in got.rejected] == ["invalid_document", "invalid_document"]
    assert "published_at" in got.rejected[0].detail
    assert got.rejected[0].stage == "classify"
    assert "JSON object" in got.rejected[1].detail


def test_8k_items_name_the_event_of_a_filing() -> None:
    filing = document(
        "doc-00009",
        "8-K",
        ("NVDA",),
        source="edgar",
        kind="filing",
        meta={"form_type": "8-K", "items": ["5.02", "9.01"]},
    )
    [record] = steps.score(FixedModel(), [filing])
    assert (record.event_type, record.event_prob) == ("officer_change", 1.0)


def test_the_linkers_relevance_wins_over_the_fallback() -> None:
    doc = document(
        "doc-00010",
        "Chipmakers rally",
        ("NVDA", "AMD"),
        body="Shares of NVDA rose.",
        meta={"relevance": {"NVDA": 0.8}},
    )
    records = steps.score(FixedModel(), [doc])
    assert [(r.ticker, r.relevance) for r in records] == [("NVDA", 0.8), ("AMD", 0.5)]


def test_each_event_of_a_batch_is_current_in_turn_in_this_task_only() -> None:
    class Event:
        pass

    events = [Event(), Event(), Event()]
    seen = [current_event() for _ in each(events)]
    assert seen == events  # a table write goes to the partition of its own event
    assert current_event() is None  # and nothing is left behind for the next batch
