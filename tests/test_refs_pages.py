"""The alerts agent's refs entries in pages of the rule-state table: read back whole and in
order, and a batch writes only the pages it changed."""

from __future__ import annotations

from typing import Any

from alerts.agent import PAGE, _Pages, _Refs


class Table(dict[str, Any]):
    """A table that counts the keys written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def _entry(n: int, first: int = 0) -> dict[str, list[str]]:
    return {f"doc-{i:05d}": [f"title {i}", "", "wire"] for i in range(first, first + n)}


def test_a_busy_entry_is_kept_in_pages_and_read_back_in_order() -> None:
    table = Table()
    pages = _Pages(table)
    entry = _entry(2 * PAGE + 10)
    pages.save("CNTS|60", entry)
    assert table.writes == ["CNTS|60", "CNTS|60|1", "CNTS|60|2"]
    assert all(len(table[k]) <= PAGE for k in table)

    again = _Pages(table)  # another worker, nothing kept: read from the table
    read = _Refs(again)["CNTS|60"]
    assert list(read.items()) == list(entry.items())


def test_adding_a_document_writes_the_last_page_only() -> None:
    table = Table()
    pages = _Pages(table)
    entry = _entry(2 * PAGE + 10)
    pages.save("CNTS|60", entry)
    table.writes.clear()
    pages.save("CNTS|60", {**entry, **_entry(1, 9_000)})
    assert table.writes == ["CNTS|60|2"]


def test_a_document_moved_into_the_counted_ones_rewrites_from_its_page_on() -> None:
    table = Table()
    pages = _Pages(table)
    entry = _entry(3 * PAGE)
    pages.save("CNTS|60", entry)
    table.writes.clear()
    order = list(entry)
    moved = order[-1]  # saved ahead of its state, now counted at position PAGE + 5
    reordered = [*order[: PAGE + 5], moved, *order[PAGE + 5 : -1]]
    pages.save("CNTS|60", {k: entry[k] for k in reordered})
    assert table.writes == ["CNTS|60|1", "CNTS|60|2"]
    assert list(_Refs(_Pages(table))["CNTS|60"]) == reordered


def test_a_shrunk_or_forgotten_entry_leaves_no_page_behind() -> None:
    table = Table()
    pages = _Pages(table)
    pages.save("CNTS|60", _entry(2 * PAGE + 1))
    pages.save("CNTS|60", _entry(3))
    assert sorted(table) == ["CNTS|60"]
    pages.save("CNTS|60", None)
    assert table == {}
    refs = _Refs(pages)
    assert refs.get("CNTS|60") is None
