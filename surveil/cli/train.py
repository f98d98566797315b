"""`surveil train`: fine-tune the two-head classifier; its options are TrainConfig's fields."""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import torch
from rich.table import Table

from models.encoders import encoder_dir
from models.train import TrainConfig, train
from surveil.cli.base import Command, SettingsContext, env_option, pass_settings
from surveil.cli.console import out

F = TypeVar("F", bound=Callable[..., Any])

# The TrainConfig fields `surveil train` sets from options of the same name, with their help;
# each option's type and default are the field's own.
TUNING = {
    "epochs": None,
    "batch_size": None,
    "max_length": None,
    "evals_per_epoch": None,
    "patience": "Evaluations without improvement before stopping early.",
    "limit": "Rows per data set (quick runs).",
    "layers": "Keep only the first N encoder layers.",
    "lora": "Train LoRA adapters (needs peft), merged on save.",
    "seed": None,
    "max_minutes": "Time budget: evaluate and stop once it is used.",
    "class_weighting": "Weight the loss towards rare classes (square-root inverse frequency).",
    "head_lr": "Learning rate of the two heads.",
}
# TrainConfig's lr suits the small preset; the larger base encoder takes smaller steps.
BASE_LR = 3e-5


def _field_option(name: str, hint: Any, default: Any, help_: str | None) -> Callable[[F], F]:
    """An option for a TrainConfig field: a flag for a bool, else its (optional) type."""
    flag = "--" + name.replace("_", "-")
    if hint is bool:
        if default:
            return click.option(
                f"{flag}/--no-{flag[2:]}", name, default=True, show_default=True, help=help_
            )
        return click.option(flag, name, is_flag=True, help=help_)
    kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
    return click.option(
        flag, name, type=kind, default=default, show_default=default is not None, help=help_
    )


def _tuning_options(command: F) -> F:
    """Add an option for each field of TUNING, in its order."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, help_ in reversed(TUNING.items()):
        command = _field_option(name, hints[name], defaults[name], help_)(command)
    return command


@click.command("train", cls=Command)
@click.option(
    "--preset",
    type=click.Choice(["small", "base"]),
    default="small",
    show_default=True,
    help="small = MiniLM-L6 (CPU), base = MPNet-base (GPU).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Default: cuda when available, else cpu.",
)
@click.option("--lr", type=float, default=None, help="Encoder learning rate (preset default).")
@_tuning_options
@click.option(
    "--init-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Continue from a trained artifact of the same preset (its weights, fresh optimizer).",
)
@env_option("--threads", "SURVEIL_THREADS", "CPU threads.", type=int)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of the labelled CSVs (default: <shared_dir>/datasets).",
)
@pass_settings
def train_command(
    ctx: SettingsContext,
    /,
    preset: str,
    device: str | None,
    lr: float | None,
    init_from: Path | None,
    threads: int | None,
    data_dir: Path | None,
    **tuning: Any,
) -> None:
    """Fine-tune the two-head classifier and write a versioned artifact."""
    settings = ctx.settings()
    encoder = encoder_dir(preset, settings.state_dir / "encoders")
    cfg = TrainConfig(
        preset=preset,
        encoder_dir=str(encoder),
        data_dir=str(data_dir or settings.shared_dir / "datasets"),
        out_dir=str(settings.artifacts_dir),
        lr=lr or (TrainConfig.lr if preset == "small" else BASE_LR),
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        threads=threads or settings.threads,
        init_from=str(init_from) if init_from else None,
        **tuning,
    )
    out.print(f"training {preset} on {cfg.device} from {encoder}")
    result = train(
        cfg,
        progress=sys.stderr.isatty(),
        on_eval=lambda p: out.print(
            f"epoch {p['epoch']:.0f} step {p['step']:.0f}: "
            f"validation macro-F1 {p['val_macro_f1']:.4f}"
        ),
    )
    _print_metrics(result.metrics)
    out.print(f"artifact: {result.path} ({result.seconds:.0f} s, {result.steps} steps)")


def _print_metrics(metrics: dict[str, Any]) -> None:
    table = Table(title="held-out test split")
    for column in (
        "data set",
        "accuracy",
        "macro-F1",
        "weighted-F1",
        "lexicon acc",
        "lexicon macro-F1",
    ):
        table.add_column(column)
    for name, report in metrics["test"].items():
        lex = metrics["lexicon_test"].get(name)
        table.add_row(
            name,
            f"{report['accuracy']:.3f}",
            f"{report['macro_f1']:.3f}",
            f"{report['weighted_f1']:.3f}",
            f"{lex['accuracy']:.3f}" if lex else "-",
            f"{lex['macro_f1']:.3f}" if lex else "-",
        )
    out.print(table)
