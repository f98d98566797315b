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
from models.batching import pad as pad_rows
from models.batching import tokenize
from models.data import DATASETS, Example, Split, load_datasets
from models.network import MultiTaskModel, build
from models.predict import evaluate_split, temperatures
from models.record import held_out_metrics, write_artifact
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
    splits = load_datasets(Path(cfg.data_dir), cfg.datasets, cfg.seed, cfg.limit)
    run = _prepare(cfg, [e for s in splits.values() for e in s.train])
    best, steps = _fit(run, cfg, splits, progress, on_eval, started)
    if best.state is not None:
        run.model.load_state_dict(best.state)
    model = _merge_lora(run.model)
    model.to("cpu").eval()
    seconds = time.monotonic() - started
    fitted = temperatures(model, run.tokenizer, splits, cfg.max_length)
    metrics: dict[str, Any] = {
        **held_out_metrics(model, run.tokenizer, splits, cfg.max_length),
        "history": best.history,
        "train_seconds": round(seconds, 1),
        "steps": steps,
    }
    folder = write_artifact(asdict(cfg), model, run.tokenizer, splits, metrics, fitted)
    return TrainResult(folder, metrics, seconds, steps, best.history)


@dataclass
class _Run:
    """The model under training and what every step of it needs."""

    model: MultiTaskModel
    tokenizer: PreTrainedTokenizerBase
    examples: list[Example]
    ids: list[list[int]]
    pad: int
    losses: dict[str, nn.CrossEntropyLoss]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    steps_per_epoch: int
    total_steps: int
    eval_points: set[int]


@dataclass
class _Best:
    """The best validation score so far, its weights and the evaluations since."""

    patience: int
    score: float = -1.0
    state: dict[str, torch.Tensor] | None = None
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def observe(self, point: dict[str, float], model: MultiTaskModel) -> bool:
        """Keep a validation point; return True when patience has run out."""
        self.history.append(point)
        score = point["val_macro_f1"]
        if score > self.score:
            self.score, self.bad_evals = score, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.bad_evals += 1
        if self.bad_evals < self.patience:
            return False
        log.info("early stop: %d evaluations without improvement", self.bad_evals)
        return True


def _prepare(cfg: TrainConfig, examples: list[Example]) -> _Run:
    """Build the model, tokenize the training rows, and set up losses and the optimizer."""
    tokenizer = AutoTokenizer.from_pretrained(cfg.encoder_dir, local_files_only=True)
    model = build(
        cfg.encoder_dir, len(SENTIMENT), len(TOPICS), pretrained=cfg.pretrained, layers=cfg.layers
    )
    if cfg.init_from:
        _init_from(model, Path(cfg.init_from), cfg)
    if cfg.lora:
        model = _apply_lora(model, cfg.lora_rank)
    model.to(cfg.device)
    ids = tokenize(tokenizer, [e.text for e in examples], cfg.max_length)
    weights = {
        task: class_weights(examples, task).to(cfg.device) if cfg.class_weighting else None
        for task in TASKS
    }
    losses = {
        task: nn.CrossEntropyLoss(weight=weights[task], ignore_index=IGNORE) for task in TASKS
    }
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = _optimizer(model, cfg)
    scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(total * cfg.warmup_ratio), total
    )
    eval_points = {
        round(steps_per_epoch * k / cfg.evals_per_epoch) for k in range(1, cfg.evals_per_epoch + 1)
    }
    pad = int(tokenizer.pad_token_id or 0)
    return _Run(
        model, tokenizer, examples, ids, pad, losses, optimizer, scheduler,
        steps_per_epoch, total, eval_points,
    )  # fmt: skip


def _optimizer(model: MultiTaskModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Return AdamW with the encoder at ``lr`` and the heads at ``head_lr``."""
    head_params = [*model.sentiment.parameters(), *model.event.parameters()]
    head_ids = {id(p) for p in head_params}
    body = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": body, "lr": cfg.lr},
            {"params": head_params, "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )


def _fit(
    run: _Run,
    cfg: TrainConfig,
    splits: dict[str, Split],
    progress: bool,
    on_eval: Callable[[dict[str, float]], None] | None,
    started: float,
) -> tuple[_Best, int]:
    """Run the epochs, validating at the evaluation points; return the best and the steps."""
    rng = random.Random(cfg.seed)  # noqa: S311 - reproducible shuffles
    best = _Best(cfg.patience)
    step, stop = 0, False
    for epoch in range(1, cfg.epochs + 1):
        run.model.train()
        bar = tqdm(
            total=run.steps_per_epoch,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        for in_epoch, batch in enumerate(_batches(run.examples, run.ids, cfg.batch_size, rng), 1):
            loss = _step(run, batch, cfg.device)
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}")
            elapsed = time.monotonic() - started
            if not progress and step % 100 == 0:
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.1f s)",
                    epoch, step, run.total_steps, loss, elapsed,
                )  # fmt: skip
            out_of_time = cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60
            if in_epoch in run.eval_points or out_of_time:
                point = _validate(run, splits, cfg, epoch, step)
                if on_eval:
                    on_eval(point)
                stop = best.observe(point, run.model)
                if out_of_time:
                    stop = True
                    log.info("time budget of %.0f minutes used: stopping", cfg.max_minutes)
                if stop:
                    break
        bar.close()
        if stop:
            break
    return best, step


def _step(run: _Run, batch: list[int], device: str) -> float:
    """Take one optimizer step on a batch; return its loss."""
    input_ids, mask = pad_rows([run.ids[i] for i in batch], run.pad)
    sent_logits, event_logits = run.model(input_ids.to(device), mask.to(device))
    loss = torch.zeros((), device=device)
    for task, logits in (("sentiment", sent_logits), ("event", event_logits)):
        labels = torch.tensor(
            [run.examples[i].label if run.examples[i].task == task else IGNORE for i in batch]
        )
        if (labels != IGNORE).any():
            loss = loss + run.losses[task](logits, labels.to(device))
    loss.backward()  # type: ignore[no-untyped-call]
    nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _validate(
    run: _Run, splits: dict[str, Split], cfg: TrainConfig, epoch: int, step: int
) -> dict[str, float]:
    """Score every split's validation rows; return the history point of this evaluation."""
    reports = {
        name: evaluate_split(
            run.model, run.tokenizer, s.val, max_length=cfg.max_length, device=cfg.device
        )
        for name, s in splits.items()
    }
    score = sum(r.macro_f1 for r in reports.values()) / len(reports)
    log.info("step %d: validation macro-F1 %.4f", step, score)
    return {
        "epoch": epoch,
        "step": step,
        "val_macro_f1": score,
        **{f"val_{n}": r.macro_f1 for n, r in reports.items()},
    }
