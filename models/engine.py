"""Batched inference on a trained artifact: tokenize, bucket by length, run, calibrate.

The engine follows transformers' pipelines in three steps: ``preprocess`` (tokenize and
bucket by length), ``_forward`` (the only code that touches the device) and
``postprocess`` (temperature-scaled softmax to typed scores).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infra.errors import ModelError
from models.artifact import Artifact, load
from models.base import TextScore
from models.batching import Bucket, buckets, tokenize
from models.network import MultiTaskModel
from models.taxonomy import NO_EVENT, SENTIMENT

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class EngineConfig:
    """How to run a model.

    Args:
        device: ``auto`` (CUDA when there is one), ``cpu`` or ``cuda``.
        max_batch: texts per forward pass, at most.
        max_length: truncation in tokens, special tokens included.
        threads: intra-op threads on the CPU (``torch.set_num_threads``, process-wide).
        precision: ``auto``, ``fp32``, ``bf16``, ``fp16`` (CUDA only) or ``int8`` (CPU only).
        compile: ``torch.compile`` the model (worth it only for long-running workers).
        min_event_prob: below this the event type is ``none``.
    """

    device: str = "auto"
    max_batch: int = 64
    max_length: int = 128
    threads: int | None = None
    precision: str = "auto"
    compile: bool = False
    min_event_prob: float = 0.35


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def auto_cpu_precision() -> str:
    """The precision ``auto`` picks on the CPU: bf16 where the CPU has bf16 dot products.

    On an AVX-512 BF16 CPU, bf16 autocast ran MiniLM 1.7x (one text) to 2.7x (large calls)
    faster than fp32, within 0.014 of its probabilities; int8 dynamic quantization was about
    as fast but off by up to 0.57, so it is never picked. docs/benchmarks.md has the numbers.
    """
    wide = torch.backends.cpu.get_cpu_capability() == "AVX512"
    if wide and cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "bf16"
    return "fp32"


def resolve_device(requested: str) -> str:
    """Turn ``auto`` into ``cuda`` or ``cpu``; refuse CUDA where there is none."""
    if requested not in DEVICES:
        msg = f"device must be one of {', '.join(DEVICES)}, got {requested!r}"
        raise ModelError(msg)
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        msg = "device 'cuda' was asked for but no CUDA device is available"
        raise ModelError(msg)
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """Turn ``auto`` into a precision the device runs well; refuse ones it cannot run."""
    if requested not in PRECISIONS:
        msg = f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}"
        raise ModelError(msg)
    if requested == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return auto_cpu_precision()
    if requested == "fp16" and device == "cpu":
        msg = "precision 'fp16' needs CUDA; use bf16 or int8 on the CPU"
        raise ModelError(msg)
    if requested == "int8" and device != "cpu":
        msg = "precision 'int8' (dynamic quantization) runs on the CPU only"
        raise ModelError(msg)
    return requested


def quantize_int8(model: nn.Module) -> nn.Module:
    """Return a copy whose linear layers hold int8 weights (activations quantized per call)."""
    # torch deprecates its quantization in favour of torchao, which this project does not ship;
    # quantize_dynamic still works in the torch we pin, and the tests check its output.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
        quantized: nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {nn.Linear}, dtype=torch.qint8, inplace=False
        )
    return quantized


class InferenceEngine:
    """Scores texts with a trained artifact in length-sorted, dynamically padded batches.

    Implements the ``Classifier`` protocol. The artifact's model is left as it is: the
    engine runs a copy when it moves or converts it.

    Args:
        artifact: a loaded artifact (``models.artifact.load``).
        config: device, precision and batching.
    """

    def __init__(self, artifact: Artifact, config: EngineConfig = EngineConfig()) -> None:
        if config.max_batch < 1 or config.max_length < 2:
            msg = f"max_batch must be >= 1 and max_length >= 2, got {config}"
            raise ModelError(msg)
        self.artifact = artifact
        self.config = config
        self._device = resolve_device(config.device)
        self._precision = resolve_precision(config.precision, self._device)
        if self._device == "cpu" and config.threads is not None:
            torch.set_num_threads(config.threads)
        self.tokenizer = artifact.tokenizer
        pad_id = artifact.tokenizer.pad_token_id
        self._pad_id = int(pad_id) if isinstance(pad_id, int) else 0
        limit = getattr(artifact.model.encoder.config, "max_position_embeddings", None)
        self.max_length = min(config.max_length, int(limit)) if limit else config.max_length
        self._sentiment_order = self._sentiment_columns(artifact.labels["sentiment"])
        self.event_labels = list(artifact.labels["event"])
        self.temperatures = (
            float(artifact.temperatures.get("sentiment", 1.0)),
            float(artifact.temperatures.get("event", 1.0)),
        )
        self.model = self._prepare(artifact.model)

    @classmethod
    def from_path(cls, path: Path, config: EngineConfig = EngineConfig()) -> InferenceEngine:
        """Load an artifact folder and build an engine on it."""
        return cls(load(path), config)

    @property
    def version(self) -> str:
        """The artifact's version, with ``/<precision>`` unless it runs in fp32."""
        suffix = "" if self._precision == "fp32" else f"/{self._precision}"
        return f"{self.artifact.version}{suffix}"

    @property
    def precision(self) -> str:
        """The precision the model runs in: fp32, bf16, fp16 or int8."""
        return self._precision

    @property
    def device(self) -> str:
        """The device the model runs on: cpu or cuda."""
        return self._device

    def classify(self, texts: Sequence[str]) -> list[TextScore]:
        """Score each text, in order."""
        if not texts:
            return []
        return self.postprocess(*self.logits(texts))

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities in input order: sentiment (n, 3), event (n, n_event).

        Sentiment columns are negative, neutral, positive; event columns follow the
        artifact's event labels.
        """
        if not texts:
            return np.zeros((0, 3)), np.zeros((0, len(self.event_labels)))
        return self.calibrate(*self.logits(texts))

    def logits(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw fp32 CPU logits of every text, in input order."""
        return self.run(self.preprocess(texts), len(texts))

    def preprocess(self, texts: Sequence[str]) -> list[Bucket]:
        """Tokenize (truncating at ``max_length``) and cut length-sorted padded batches."""
        ids = tokenize(self.tokenizer, texts, self.max_length)
        return list(buckets(ids, self.config.max_batch, self._pad_id))

    def run(self, batches: Sequence[Bucket], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward every bucket and put the logit rows back in input order."""
        sentiment = torch.empty((n, len(SENTIMENT)), dtype=torch.float32)
        event = torch.empty((n, len(self.event_labels)), dtype=torch.float32)
        for bucket in batches:
            sent_logits, event_logits = self._forward(bucket)
            rows = torch.tensor(bucket.indices, dtype=torch.long)
            sentiment[rows] = sent_logits
            event[rows] = event_logits
        return sentiment, event

    def _forward(self, bucket: Bucket) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one padded batch on the device; return fp32 CPU logits (sentiment reordered)."""
        device = torch.device(self._device)
        dtype = _AUTOCAST.get(self._precision)
        with torch.inference_mode():
            input_ids = bucket.input_ids.to(device, non_blocking=True)
            attention_mask = bucket.attention_mask.to(device, non_blocking=True)
            autocast = torch.autocast(
                device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            )
            try:
                with autocast:
                    sent_logits, event_logits = self.model(input_ids, attention_mask)
            except RuntimeError as exc:  # out of memory, a broken CUDA context, ...
                shape = tuple(input_ids.shape)
                msg = f"the model failed on a batch of shape {shape} on {self._device}: {exc}"
                raise ModelError(msg) from exc
            sent_logits = sent_logits[:, self._sentiment_order]
            return sent_logits.float().cpu(), event_logits.float().cpu()

    def calibrate(
        self, sent_logits: torch.Tensor, event_logits: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """Temperature-scale the logits and softmax them into probabilities."""
        t_sent, t_event = self.temperatures
        sent = torch.softmax(sent_logits.double() / t_sent, dim=-1)
        event = torch.softmax(event_logits.double() / t_event, dim=-1)
        return sent.numpy(), event.numpy()

    def postprocess(self, sent_logits: torch.Tensor, event_logits: torch.Tensor) -> list[TextScore]:
        """Turn logits into scores; events under ``min_event_prob`` become ``none`` (p=0)."""
        sent, event = self.calibrate(sent_logits, event_logits)
        top = event.argmax(axis=1)
        out = []
        for probs, k, row in zip(sent.tolist(), top.tolist(), event, strict=True):
            p_event = float(row[k])
            confident = p_event >= self.config.min_event_prob
            out.append(
                TextScore(
                    probs=(probs[0], probs[1], probs[2]),
                    event_type=self.event_labels[k] if confident else NO_EVENT,
                    event_prob=p_event if confident else 0.0,
                )
            )
        return out

    def _prepare(self, model: MultiTaskModel) -> nn.Module:
        """Return the model to run: the artifact's, or a converted copy; compiled if asked."""
        prepared: nn.Module = model
        dtype = _AUTOCAST.get(self._precision)
        if self._precision == "int8":
            prepared = quantize_int8(model)
        elif dtype is not None or self._device != "cpu":
            prepared = copy.deepcopy(model).to(self._device)
        if dtype is not None:
            # Autocast would cast these weights on every call (same rounding, so same results);
            # casting once saves it, 20% of a one-text call on the CPU. LayerNorm, embeddings
            # and softmax stay fp32 under autocast, and so do pooling and the two heads.
            heads = {id(getattr(prepared, name)) for name in ("sentiment", "event")}
            for module in prepared.modules():
                if isinstance(module, nn.Linear) and id(module) not in heads:
                    module.to(dtype)
        prepared.eval()
        if self.config.compile:
            compiled: nn.Module = torch.compile(prepared, dynamic=True)  # type: ignore[assignment]
            return compiled
        return prepared

    @staticmethod
    def _sentiment_columns(labels: Sequence[str]) -> list[int]:
        """Column of each of negative, neutral, positive in the model's sentiment head."""
        if sorted(labels) != sorted(SENTIMENT):
            msg = f"the sentiment head must predict {', '.join(SENTIMENT)}; got {list(labels)}"
            raise ModelError(msg)
        return [list(labels).index(name) for name in SENTIMENT]
