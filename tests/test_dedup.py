"""Near-duplicate marking: reposts and retweets point at the first copy, within a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ingest.dedup import NearDuplicates, signature, similarity
from streams.records import Document

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STORY = "Apple shares fall 5% after iPhone sales miss estimates in China, analysts say"


def doc(doc_id: str, title: str, minutes: float = 0, body: str = "") -> Document:
    at = T0 + timedelta(minutes=minutes)
    return Document(
        doc_id=doc_id, source="t", kind="news", title=title, body=body,
        published_at=at, fetched_at=at,
    )  # fmt: skip


def test_a_repost_is_marked_as_a_duplicate_of_the_first_copy() -> None:
    index = NearDuplicates()
    first = index.mark(doc("a" * 32, STORY))
    repost = index.mark(doc("b" * 32, f"RT @trader: {STORY}", minutes=5))
    other = index.mark(doc("c" * 32, "Microsoft beats on cloud revenue as Azure accelerates"))
    assert (first.dup_of, repost.dup_of, other.dup_of) == (None, "a" * 32, None)


def test_a_chain_of_copies_points_at_the_original() -> None:
    index = NearDuplicates()
    index.mark(doc("a" * 32, STORY))
    index.mark(doc("b" * 32, STORY.replace("analysts say", "analyst says"), minutes=1))
    third = index.mark(doc("c" * 32, STORY.upper(), minutes=2))
    assert third.dup_of == "a" * 32


def test_copies_further_apart_than_the_window_are_not_duplicates() -> None:
    index = NearDuplicates(window=timedelta(hours=1))
    index.mark(doc("a" * 32, STORY))
    assert index.mark(doc("b" * 32, STORY, minutes=61)).dup_of is None


def test_the_same_document_again_is_not_its_own_duplicate() -> None:
    index = NearDuplicates()
    index.mark(doc("a" * 32, STORY))
    assert index.mark(doc("a" * 32, STORY)).dup_of is None


def test_short_texts_compare_exactly() -> None:
    index = NearDuplicates()
    index.mark(doc("a" * 32, "Halted"))
    assert index.mark(doc("b" * 32, "halted!")).dup_of == "a" * 32
    assert index.mark(doc("c" * 32, "Resumed")).dup_of is None


def test_the_index_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "neardup.json"
    before = NearDuplicates(path=path)
    before.mark(doc("a" * 32, STORY))
    before.save()
    after = NearDuplicates(path=path)
    assert len(after) == 1
    assert after.mark(doc("b" * 32, STORY, minutes=3)).dup_of == "a" * 32


def test_an_unreadable_index_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "neardup.json"
    path.write_text("{not json")
    assert len(NearDuplicates(path=path)) == 0


def test_old_entries_are_evicted() -> None:
    index = NearDuplicates(window=timedelta(hours=1))
    for i in range(50):
        index.mark(doc(f"{i:032d}", f"story number {i} about things", minutes=60 * i))
    assert len(index) <= 3


@given(st.text(max_size=300), st.text(max_size=300))
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    sa, sb = signature(a), signature(b)
    assert similarity(sa, sb) == similarity(sb, sa)
    assert 0.0 <= similarity(sa, sb) <= 1.0
