"""Score a model under training on labelled examples: logits, reports and temperatures."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from models.batching import buckets, tokenize
from models.data import Example, Split
from models.metrics import Report, classification_report
from models.network import MultiTaskModel
from models.taxonomy import TASKS


def head_of(task: str) -> int:
    """Return which of the model's two outputs scores ``task``."""
    return 0 if task == "sentiment" else 1


@torch.inference_mode()
def predict_logits(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch: int = 128,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Return both heads' logits for texts, in input order (eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    n = len(texts)
    sent = np.zeros((n, model.sentiment.out_features), dtype=np.float32)
    event = np.zeros((n, model.event.out_features), dtype=np.float32)
    pad = int(tokenizer.pad_token_id or 0)
    for bucket in buckets(tokenize(tokenizer, texts, max_length), batch, pad):
        s, e = model(bucket.input_ids.to(device), bucket.attention_mask.to(device))
        sent[bucket.indices] = s.float().cpu().numpy()
        event[bucket.indices] = e.float().cpu().numpy()
    model.train(was_training)
    return sent, event


def evaluate_split(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    device: str = "cpu",
) -> Report:
    """Return accuracy and F1 of the head an example set belongs to."""
    task = examples[0].task
    logits = predict_logits(
        model, tokenizer, [e.text for e in examples], max_length=max_length, device=device
    )[head_of(task)]
    return classification_report(
        [e.label for e in examples], logits.argmax(axis=1).tolist(), TASKS[task]
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Return the softmax temperature that minimises validation NLL (a 1-D search over log T)."""
    if len(labels) == 0:
        return 1.0
    tensor = torch.from_numpy(logits).double()
    target = torch.from_numpy(labels).long()

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(tensor / math.exp(log_t), target))

    lo, hi = math.log(0.05), math.log(20.0)
    for _ in range(60):  # golden-section search; NLL is unimodal in log T
        m1, m2 = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if nll(m1) < nll(m2):
            hi = m2
        else:
            lo = m1
    return math.exp((lo + hi) / 2)


def temperatures(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, Split],
    max_length: int,
) -> dict[str, float]:
    """Fit each task's temperature on the validation rows of every split (1.0 without any)."""
    fitted = {}
    for task in TASKS:
        val = [e for s in splits.values() for e in s.val if e.task == task]
        if val:
            logits = predict_logits(model, tokenizer, [e.text for e in val], max_length=max_length)
            fitted[task] = fit_temperature(logits[head_of(task)], np.array([e.label for e in val]))
        else:
            fitted[task] = 1.0
    return fitted
