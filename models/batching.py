"""Length-sorted batches with dynamic padding: short headlines never pay for long ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Bucket:
    """A padded batch and the positions of its texts in the caller's list."""

    indices: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of each text, truncated to ``max_length`` (special tokens included)."""
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    return [list(ids) for ids in encoded["input_ids"]]


def pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token id rows to the longest; return (input_ids, attention_mask)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def buckets(token_ids: Sequence[Sequence[int]], max_batch: int, pad_id: int) -> Iterator[Bucket]:
    """Yield batches of at most ``max_batch`` texts of similar length, padded to the longest."""
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), max_batch):
        chosen = order[start : start + max_batch]
        ids, mask = pad([token_ids[i] for i in chosen], pad_id)
        yield Bucket(chosen, ids, mask)
