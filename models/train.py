"""Joint training of the two-head classifier on the labelled data sets.

Each example adds the loss of the head it has a label for (sentiment rows train the
sentiment head, topic rows the event head; the encoder learns from both). AdamW with
warmup and linear decay, class-weighted cross-entropy, early stopping on validation
macro-F1, fixed seeds, temperature scaling on validation, optional LoRA through peft.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from infra.errors import ConfigError, ModelError
from models import artifact
from models.batching import buckets, tokenize
from models.batching import pad as pad_rows
from models.data import DATASETS, Example, Split, file_sha256, load_datasets
from models.encoders import PRESETS
from models.metrics import Report, classification_report
from models.network import MultiTaskModel, build
from models.taxonomy import SENTIMENT, TASKS, TOPICS

log = logging.getLogger(__name__)

IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """What and how to train; every field is recorded in the artifact's config.json."""

    preset: str
    encoder_dir: str
    data_dir: str
    out_dir: str
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 128
    patience: int = 2
    evals_per_epoch: int = 1
    seed: int = 13
    device: str = "cpu"
    threads: int | None = None
    layers: int | None = None
    pretrained: bool = True
    lora: bool = False
    lora_rank: int = 16
    limit: int | None = None
    datasets: tuple[str, ...] = tuple(DATASETS)
    class_weighting: bool = True
    max_minutes: float | None = None
    init_from: str | None = None


@dataclass
class TrainResult:
    """Where the artifact went and what it scored."""

    path: Path
    metrics: dict[str, Any]
    seconds: float
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Fix the seeds of Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds libraries that use the global state
    torch.manual_seed(seed)


def class_weights(examples: Sequence[Example], task: str) -> torch.Tensor:
    """Inverse-frequency weights, softened by a square root, mean 1 over present classes."""
    n_classes = len(TASKS[task])
    counts = Counter(e.label for e in examples if e.task == task)
    total = sum(counts.values())
    weights = torch.ones(n_classes)
    for label in range(n_classes):
        if counts[label]:
            weights[label] = math.sqrt(total / (n_classes * counts[label]))
    return weights / weights[[c for c in range(n_classes) if counts[c]]].mean()


def _init_from(model: MultiTaskModel, folder: Path, cfg: TrainConfig) -> None:
    """Start from a trained artifact's weights (same encoder and layer count).

    The artifact must have been trained on the same splits (seed and data sets), or its
    training rows would include this run's test rows.

    Raises:
        ModelError: the folder is not an artifact, was trained on other splits, or its
            weights do not fit the model.
    """
    weights = folder / artifact.WEIGHTS
    if not artifact.is_artifact(folder):
        msg = f"--init-from {folder}: not a model artifact"
        raise ModelError(msg)
    previous = json.loads((folder / "config.json").read_text("utf-8"))
    if previous.get("seed") != cfg.seed or list(previous.get("datasets", [])) != list(cfg.datasets):
        msg = (
            f"--init-from {folder}: trained with seed {previous.get('seed')} on "
            f"{previous.get('datasets')}, this run uses seed {cfg.seed} on {list(cfg.datasets)}; "
            "different splits would leak test rows into training"
        )
        raise ModelError(msg)
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as exc:
        msg = f"--init-from {folder}: its weights do not fit this preset and layer count: {exc}"
        raise ModelError(msg) from exc
    log.info("initialised from %s", folder)


def _batches(
    examples: Sequence[Example], ids: Sequence[list[int]], batch_size: int, rng: random.Random
) -> Iterator[list[int]]:
    """Shuffled batches of similar length: sort within pools of 50 batches, then shuffle."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(ids[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    yield from batches


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
    """Both heads' logits for texts, in input order (eval mode, no gradients)."""
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


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises validation NLL (a 1-D search over log T)."""
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


def _head(task: str) -> int:
    return 0 if task == "sentiment" else 1


def evaluate_split(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    cfg: TrainConfig,
) -> Report:
    """Accuracy and F1 of the head an example set belongs to."""
    task = examples[0].task
    logits = predict_logits(
        model, tokenizer, [e.text for e in examples], max_length=cfg.max_length, device=cfg.device
    )[_head(task)]
    return classification_report(
        [e.label for e in examples], logits.argmax(axis=1).tolist(), TASKS[task]
    )


def _selection_score(reports: dict[str, Report]) -> float:
    return sum(r.macro_f1 for r in reports.values()) / len(reports)


def _apply_lora(model: MultiTaskModel, rank: int) -> MultiTaskModel:
    try:
        from peft import LoraConfig, get_peft_model  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        msg = "--lora needs the peft package: pip install peft"
        raise ConfigError(msg) from exc
    targets = [
        name
        for name in ("query", "key", "value", "q", "k", "v", "dense")
        if any(n.endswith(f".{name}") for n, _ in model.encoder.named_modules())
    ]
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=targets)
    model.encoder = get_peft_model(model.encoder, lora)
    return model


def _merge_lora(model: MultiTaskModel) -> MultiTaskModel:
    merge = getattr(model.encoder, "merge_and_unload", None)
    if merge is not None:
        model.encoder = merge()
    return model


def train(
    cfg: TrainConfig,
    progress: bool = True,
    on_eval: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train, select the best epoch on validation, calibrate, test, and write an artifact."""
    started = time.monotonic()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        msg = "--device cuda was asked for, but torch sees no CUDA device"
        raise ConfigError(msg)
    data_dir = Path(cfg.data_dir)
    splits = load_datasets(data_dir, cfg.datasets, cfg.seed, cfg.limit)
    train_set = [e for s in splits.values() for e in s.train]
    tokenizer = AutoTokenizer.from_pretrained(cfg.encoder_dir, local_files_only=True)
    model = build(
        cfg.encoder_dir, len(SENTIMENT), len(TOPICS), pretrained=cfg.pretrained, layers=cfg.layers
    )
    if cfg.init_from:
        _init_from(model, Path(cfg.init_from), cfg)
    if cfg.lora:
        model = _apply_lora(model, cfg.lora_rank)
    model.to(cfg.device)
    ids = tokenize(tokenizer, [e.text for e in train_set], cfg.max_length)
    pad = int(tokenizer.pad_token_id or 0)
    weights = {
        task: class_weights(train_set, task).to(cfg.device) if cfg.class_weighting else None
        for task in TASKS
    }
    losses = {
        task: nn.CrossEntropyLoss(weight=weights[task], ignore_index=IGNORE) for task in TASKS
    }

    head_params = [*model.sentiment.parameters(), *model.event.parameters()]
    head_ids = {id(p) for p in head_params}
    body = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": body, "lr": cfg.lr},
            {"params": head_params, "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(total * cfg.warmup_ratio), total
    )
    eval_points = {
        round(steps_per_epoch * k / cfg.evals_per_epoch) for k in range(1, cfg.evals_per_epoch + 1)
    }

    rng = random.Random(cfg.seed)  # noqa: S311 - reproducible shuffles
    best_score, best_state, bad_evals, step = -1.0, None, 0, 0
    history: list[dict[str, float]] = []
    stop = False
    for epoch in range(cfg.epochs):
        model.train()
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        for in_epoch, batch in enumerate(_batches(train_set, ids, cfg.batch_size, rng), 1):
            input_ids, mask = pad_rows([ids[i] for i in batch], pad)
            sent_y = torch.tensor(
                [train_set[i].label if train_set[i].task == "sentiment" else IGNORE for i in batch]
            )
            event_y = torch.tensor(
                [train_set[i].label if train_set[i].task == "event" else IGNORE for i in batch]
            )
            sent_logits, event_logits = model(input_ids.to(cfg.device), mask.to(cfg.device))
            loss = torch.zeros((), device=cfg.device)
            if (sent_y != IGNORE).any():
                loss = loss + losses["sentiment"](sent_logits, sent_y.to(cfg.device))
            if (event_y != IGNORE).any():
                loss = loss + losses["event"](event_logits, event_y.to(cfg.device))
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if not progress and step % 100 == 0:
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.1f s)",
                    epoch + 1,
                    step,
                    total,
                    loss.item(),
                    time.monotonic() - started,
                )
            out_of_time = (
                cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60
            )
            if in_epoch in eval_points or out_of_time:
                reports = {
                    name: evaluate_split(model, tokenizer, s.val, cfg) for name, s in splits.items()
                }
                score = _selection_score(reports)
                point = {
                    "epoch": epoch + 1,
                    "step": step,
                    "val_macro_f1": score,
                    **{f"val_{n}": r.macro_f1 for n, r in reports.items()},
                }
                history.append(point)
                log.info("step %d: validation macro-F1 %.4f", step, score)
                if on_eval:
                    on_eval(point)
                if score > best_score:
                    best_score, bad_evals = score, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_evals += 1
                    if bad_evals >= cfg.patience:
                        stop = True
                        log.info("early stop: %d evaluations without improvement", bad_evals)
                if out_of_time:
                    stop = True
                    log.info("time budget of %.0f minutes used: stopping", cfg.max_minutes)
                if stop:
                    break
        bar.close()
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model = _merge_lora(model)
    model.to("cpu").eval()
    eval_cfg = TrainConfig(**{**asdict(cfg), "device": "cpu"})
    return _finish(
        cfg, eval_cfg, model, tokenizer, splits, data_dir, history, step, time.monotonic() - started
    )


def _finish(
    cfg: TrainConfig,
    eval_cfg: TrainConfig,
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, Split],
    data_dir: Path,
    history: list[dict[str, float]],
    steps: int,
    seconds: float,
) -> TrainResult:
    temperatures = {}
    for task in TASKS:
        val = [e for s in splits.values() for e in s.val if e.task == task]
        if val:
            logits = predict_logits(
                model, tokenizer, [e.text for e in val], max_length=cfg.max_length
            )[_head(task)]
            temperatures[task] = fit_temperature(logits, np.array([e.label for e in val]))
        else:
            temperatures[task] = 1.0
    metrics: dict[str, Any] = {
        "test": {},
        "lexicon_test": {},
        "history": history,
        "train_seconds": round(seconds, 1),
        "steps": steps,
    }
    for name, split in splits.items():
        if not split.test:
            continue
        metrics["test"][name] = evaluate_split(model, tokenizer, split.test, eval_cfg).to_json()
        if split.test[0].task == "sentiment":
            metrics["lexicon_test"][name] = _lexicon_report(split.test).to_json()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    digest = artifact.content_hash(model)
    folder = Path(cfg.out_dir) / f"{cfg.preset}-{stamp}-{digest[:8]}"
    config = {
        **asdict(cfg),
        "encoder": PRESETS.get(cfg.preset, Path(cfg.encoder_dir).name),
        "created_at": datetime.now(UTC).isoformat(),
        "torch": torch.__version__,
    }
    artifact.save(
        folder,
        model,
        tokenizer,
        {"sentiment": list(SENTIMENT), "event": list(TOPICS)},
        config,
        temperatures,
    )
    data = {
        name: {
            "sha256": file_sha256(data_dir / name),
            "train": len(s.train),
            "val": len(s.val),
            "test": len(s.test),
        }
        for name, s in splits.items()
    }
    artifact.write_json(folder / "data.json", data)
    artifact.write_json(folder / "metrics.json", metrics)
    (folder / "MODEL_CARD.md").write_text(
        artifact.model_card(folder.name, config, data, metrics), "utf-8"
    )
    log.info("wrote %s", folder)
    return TrainResult(folder, metrics, seconds, steps, history)


def _lexicon_report(examples: Sequence[Example]) -> Report:
    from models.lexicon import LexiconClassifier  # noqa: PLC0415

    scores = LexiconClassifier().classify([e.text for e in examples])
    predicted = [SENTIMENT.index(s.label) for s in scores]
    return classification_report([e.label for e in examples], predicted, SENTIMENT)
