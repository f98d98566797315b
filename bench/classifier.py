"""Classifier throughput: the batched engine against a transformers pipeline called per document.

```
.venv/bin/python -m bench.classifier [--model PATH] [--preset small] [--batches 1,8,32,128,512,1024]
    [--docs 2048] [--naive-docs 256] [--threads N] [--precision auto|fp32,bf16,int8] [--data DIR]
```

A "batch" is the number of documents in one ``classify`` call (what the classify agent hands
over); the engine cuts each call into length-sorted buckets of at most ``--max-batch``. For
every batch size it prints documents per second end to end, per-call p50/p99 latency, the
throughput with tokenization excluded and the tokenization cost, and the ratio against the
naive pipeline. Then the agreement of every precision measured with fp32, on the same texts.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from bench.common import cpu_model, whole_run
from models.artifact import Artifact, load
from models.encoders import PRESETS, encoder_dir
from models.engine import EngineConfig, InferenceEngine, cpu_flags
from models.network import build, mean_pool
from models.taxonomy import SENTIMENT, TOPICS

FILES = ("fpb_sentiment.csv", "tfns_sentiment.csv", "tfn_topics.csv")
TOLERANCE = 0.02  # max abs probability difference a faster precision may have against fp32
MIN_AGREEMENT = 0.99  # share of texts whose argmax it must keep


@dataclass
class Sweep:
    """Timings of one precision at one batch size."""

    precision: str
    batch: int
    docs: int = 0
    tokenize_s: float = 0.0
    forward_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    real_tokens: int = 0
    padded_tokens: int = 0

    @property
    def total_s(self) -> float:
        return sum(self.latencies)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000

    def row(self, naive_rate: float) -> str:
        """Return the throughput table's row of this sweep."""
        rate = self.docs / self.total_s
        return (
            f"| {self.precision} | {self.batch} | {rate:.1f} | {rate / naive_rate:.1f}x "
            f"| {self.percentile(50):.1f} | {self.percentile(99):.1f} "
            f"| {self.docs / self.forward_s:.1f} "
            f"| {self.tokenize_s / self.docs * 1e6:.0f} "
            f"| {1 - self.real_tokens / self.padded_tokens:.0%} |"
        )


def read_rows(data: Path) -> dict[str, list[tuple[str, str]]]:
    """(text, label) rows of each data file, read in place."""
    rows = {}
    for name in FILES:
        with (data / name).open(encoding="utf-8", newline="") as fh:
            rows[name] = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
    return rows


def split_mix(
    rows: dict[str, list[tuple[str, str]]], docs: int, probe: int, seed: int
) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """A seeded equal mix of the three files to score, and disjoint labelled rows to probe."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    texts: list[str] = []
    sentiment: list[tuple[str, str]] = []
    topics: list[tuple[str, str]] = []
    for name, file_rows in rows.items():
        shuffled = rng.sample(file_rows, len(file_rows))
        share = docs // len(rows) + (1 if name == FILES[0] else 0) * (docs % len(rows))
        texts += [text for text, _ in shuffled[:share]]
        held = shuffled[share:]
        if name == "tfn_topics.csv":
            topics += held[:probe]
        else:
            sentiment += held[: probe // 2]
    rng.shuffle(texts)
    return texts, sentiment, topics


def untrained(preset: str, max_length: int) -> tuple[Artifact, Path]:
    """The preset's pretrained encoder with freshly initialised heads, as an artifact."""
    folder = encoder_dir(preset, Path("var/encoders"))
    model = build(str(folder), len(SENTIMENT), len(TOPICS)).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    labels = {"sentiment": list(SENTIMENT), "event": list(TOPICS)}
    artifact = Artifact(
        Path(f"{preset}-untrained"), model, tokenizer, labels, {"max_length": max_length}, {}
    )
    return artifact, folder


def fit_probe(
    engine: InferenceEngine, sentiment: list[tuple[str, str]], topics: list[tuple[str, str]]
) -> None:
    """Fit both heads as logistic regressions on frozen fp32 features (peaked like trained)."""
    model = engine.artifact.model
    for head, rows, names in (
        (model.sentiment, sentiment, SENTIMENT),
        (model.event, topics, TOPICS),
    ):
        feats = torch.empty((len(rows), head.in_features))
        with torch.inference_mode():
            for bucket in engine.preprocess([text for text, _ in rows]):
                hidden = model.encoder(
                    input_ids=bucket.input_ids, attention_mask=bucket.attention_mask
                ).last_hidden_state
                feats[torch.tensor(bucket.indices)] = mean_pool(hidden, bucket.attention_mask)
        x = feats.clone()
        y = torch.tensor([names.index(label) for _, label in rows])
        _fit(head, x, y)


def _fit(head: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> None:
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(head(x), y) + 1e-3 * head.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]


def sweep(
    engine: InferenceEngine, texts: Sequence[str], batch: int
) -> tuple[Sweep, np.ndarray, np.ndarray]:
    """Score ``texts`` in calls of ``batch``; return timings and the probabilities."""
    result = Sweep(engine.precision, batch)
    engine.classify(texts[: min(batch, 64)])  # warm-up: allocator, oneDNN kernels
    sent, event = [], []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        t0 = time.perf_counter()
        buckets = engine.preprocess(chunk)
        t1 = time.perf_counter()
        logits = engine.run(buckets, len(chunk))
        engine.postprocess(*logits)
        t2 = time.perf_counter()
        result.tokenize_s += t1 - t0
        result.forward_s += t2 - t1
        result.latencies.append(t2 - t0)
        result.docs += len(chunk)
        result.real_tokens += sum(int(b.attention_mask.sum()) for b in buckets)
        result.padded_tokens += sum(b.attention_mask.numel() for b in buckets)
        probs = engine.calibrate(*logits)
        sent.append(probs[0])
        event.append(probs[1])
    return result, np.concatenate(sent), np.concatenate(event)


def naive(
    encoder: Path,
    pretrained: bool,
    tokenizer: transformers.PreTrainedTokenizerBase,
    texts: Sequence[str],
    device: str,
    max_length: int,
) -> list[float]:
    """Per-document latencies of a text-classification pipeline on the same encoder.

    Args:
        encoder: the encoder folder; with ``pretrained`` its weights are loaded, else only its
            config (an artifact keeps its weights in its own format): same shapes, same speed.
    """
    if pretrained:
        model = AutoModelForSequenceClassification.from_pretrained(
            encoder, num_labels=3, local_files_only=True
        )
    else:
        config = AutoConfig.from_pretrained(encoder, num_labels=3, local_files_only=True)
        model = AutoModelForSequenceClassification.from_config(config)  # type: ignore[no-untyped-call]
    pipe = pipeline(  # type: ignore[call-overload]
        "text-classification", model=model.eval(), tokenizer=tokenizer, device=device
    )
    for text in texts[:3]:
        pipe(text, truncation=True, max_length=max_length)
    latencies = []
    for text in texts:
        t0 = time.perf_counter()
        pipe(text, truncation=True, max_length=max_length)
        latencies.append(time.perf_counter() - t0)
    return latencies


def machine_line(engine: InferenceEngine) -> str:
    """CPU model, cores, library versions, threads, device and precision."""
    features = sorted(cpu_flags() & {"avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"})
    device = engine.device
    if device == "cuda":
        device = f"cuda ({torch.cuda.get_device_name()})"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores ({torch.backends.cpu.get_cpu_capability()}"
        f"{', ' + ', '.join(features) if features else ''}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}, threads {torch.get_num_threads()}, "
        f"device {device}, precision {engine.precision}"
    )


def agreement(
    name: str, ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]
) -> tuple[str, bool]:
    """A table row of max/p99 abs difference and argmax agreement, and whether it passes."""
    cells, ok = [], True
    for a, b in zip(ref, got, strict=True):
        diff = np.abs(a - b).max(axis=1)
        same = float((a.argmax(axis=1) == b.argmax(axis=1)).mean())
        ok = ok and float(diff.max()) <= TOLERANCE and same >= MIN_AGREEMENT
        cells += [f"{diff.max():.4f}", f"{np.percentile(diff, 99):.4f}", f"{same:.2%}"]
    return f"| {name} | {' | '.join(cells)} | {'pass' if ok else 'FAIL'} |", ok


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.classifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="a trained artifact folder")
    parser.add_argument("--preset", default="small", help="encoder when no --model is given")
    parser.add_argument("--batches", default="1,8,32,128,512,1024", help="docs per classify call")
    parser.add_argument("--docs", type=int, default=2048, help="documents per batch size")
    parser.add_argument("--naive-docs", type=int, default=256, help="documents for the naive run")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--precision", default="auto", help="auto, or a list: fp32,bf16,int8")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--max-batch", type=int, default=64, help="engine bucket size")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--probe", type=int, default=600, help="labelled texts per head to fit")
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with whole_run():
        run(args)


def run(args: argparse.Namespace) -> None:
    """Time every precision at every batch size against the naive pipeline; print the tables."""
    batches = [int(b) for b in args.batches.split(",")]
    texts, sent_rows, topic_rows = split_mix(
        read_rows(args.data), args.docs, 0 if args.model else args.probe, args.seed
    )
    artifact, pretrained, heads = model_under_test(args, len(sent_rows), len(topic_rows))
    base = {"device": args.device, "max_batch": args.max_batch, "max_length": args.max_length}
    reference = InferenceEngine(
        artifact, EngineConfig(precision="fp32", threads=args.threads, **base)
    )
    if args.probe and not args.model:
        # before the other engines: bf16 and int8 run converted copies of the weights
        fit_probe(reference, sent_rows, topic_rows)
    precisions = [
        InferenceEngine(artifact, EngineConfig(precision=name, threads=args.threads, **base))
        for name in args.precision.split(",")
    ]
    # fp32 is the reference for agreement; unless asked for, time it at both ends only
    fp32_batches = batches
    if not any(e.precision == "fp32" for e in precisions):
        precisions.append(reference)
        fp32_batches = sorted({min(batches), max(batches)})
    lengths = [int(n) for b in reference.preprocess(texts) for n in b.attention_mask.sum(1)]
    print(f"# machine: {machine_line(precisions[0])}")
    print(f"# model: {heads}")
    print(
        f"# texts: {len(texts)} headlines and sentences, an equal seeded mix of "
        f"{', '.join(FILES)} (seed {args.seed}); tokens p50 {int(np.median(lengths))}, "
        f"p90 {int(np.percentile(lengths, 90))}, max {max(lengths)} (truncated at "
        f"{reference.max_length}); engine buckets of at most {args.max_batch}"
    )
    naive_rate = naive_line(args, texts, artifact, pretrained, reference.device)
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    print()
    print(
        "| precision | batch | docs/s | vs naive | p50 ms/call | p99 ms/call "
        "| pre-tokenized docs/s | tokenize us/doc | padding |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for engine in precisions:
        for batch in fp32_batches if engine is reference else batches:
            result, sent, event = sweep(engine, texts, batch)
            probs.setdefault(engine.precision, (sent, event))
            print(result.row(naive_rate), flush=True)
    agreement_table(probs, len(texts))


def model_under_test(
    args: argparse.Namespace, sentiment_rows: int, topic_rows: int
) -> tuple[Artifact, Path | None, str]:
    """Return the artifact to time, the pretrained encoder folder if untrained, and its line."""
    if args.model:
        artifact = load(args.model)
        return artifact, None, f"trained artifact {artifact.version}"
    artifact, pretrained = untrained(args.preset, args.max_length)
    encoder_name = PRESETS.get(args.preset, pretrained.name)
    heads = f"NOT TRAINED: the {args.preset} encoder ({encoder_name}) with fresh heads; " + (
        f"for the agreement check they are fitted as a linear probe on "
        f"{sentiment_rows} + {topic_rows} labelled texts disjoint from the "
        f"benchmark texts (throughput does not depend on the heads)"
        if args.probe
        else "agreement is measured on near-uniform probabilities"
    )
    return artifact, pretrained, heads


def naive_line(
    args: argparse.Namespace,
    texts: Sequence[str],
    artifact: Artifact,
    pretrained: Path | None,
    device: str,
) -> float:
    """Time the naive pipeline on the first ``--naive-docs`` texts; print it, return docs/s."""
    naive_lat = naive(
        pretrained or artifact.path / "encoder",
        pretrained is not None,
        artifact.tokenizer,
        texts[: args.naive_docs],
        device,
        args.max_length,
    )
    naive_rate = len(naive_lat) / sum(naive_lat)
    print(
        f"# naive: transformers.pipeline('text-classification') per document, fp32, "
        f"AutoModelForSequenceClassification(num_labels=3) on the same encoder "
        f"({'pretrained, classifier head untrained' if pretrained else 'random weights'}); "
        f"{len(naive_lat)} docs: {naive_rate:.1f} docs/s, "
        f"p50 {np.percentile(naive_lat, 50) * 1000:.1f} ms, "
        f"p99 {np.percentile(naive_lat, 99) * 1000:.1f} ms"
    )
    return naive_rate


def agreement_table(probs: dict[str, tuple[np.ndarray, np.ndarray]], texts: int) -> None:
    """Print each precision's agreement with fp32 on the same texts."""
    print()
    print(
        f"agreement with fp32 on the {texts} texts (tolerance: max abs prob diff "
        f"<= {TOLERANCE}, argmax agreement >= {MIN_AGREEMENT:.0%}):"
    )
    print()
    print(
        "| precision | sentiment max diff | p99 | argmax "
        "| event max diff | p99 | argmax | verdict |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, got in probs.items():
        if name != "fp32":
            print(agreement(name, probs["fp32"], got)[0])
    print()


if __name__ == "__main__":
    main()
