"""`surveil train` and `surveil models`: fine-tune the classifier, list what was trained."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from infra.errors import SurveilError

console = Console()


@click.command("train")
@click.option(
    "--preset",
    type=click.Choice(["small", "base"]),
    default="small",
    show_default=True,
    help="small = MiniLM-L6 (CPU), base = MPNet-base (GPU).",
)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Default: cuda when available, else cpu.",
)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=None, help="Encoder learning rate (preset default).")
@click.option("--max-length", type=int, default=128, show_default=True)
@click.option("--evals-per-epoch", type=int, default=1, show_default=True)
@click.option(
    "--patience",
    type=int,
    default=2,
    show_default=True,
    help="Evaluations without improvement before stopping early.",
)
@click.option("--limit", type=int, default=None, help="Rows per data set (quick runs).")
@click.option("--layers", type=int, default=None, help="Keep only the first N encoder layers.")
@click.option("--lora", is_flag=True, help="Train LoRA adapters (needs peft), merged on save.")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--max-minutes",
    type=float,
    default=None,
    help="Time budget: evaluate and stop once it is used.",
)
@click.option(
    "--init-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Continue from a trained artifact of the same preset (its weights, fresh optimizer).",
)
@click.option(
    "--class-weighting/--no-class-weighting",
    default=True,
    show_default=True,
    help="Weight the loss towards rare classes (square-root inverse frequency).",
)
@click.option("--head-lr", type=float, default=None, help="Learning rate of the two heads.")
@click.option(
    "--threads",
    envvar="SURVEIL_THREADS",
    show_envvar=True,
    type=int,
    default=None,
    help="CPU threads.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of the labelled CSVs (default: <shared_dir>/datasets).",
)
@click.pass_context
def train_command(
    ctx: click.Context,
    preset: str,
    epochs: int,
    device: str | None,
    batch_size: int,
    lr: float | None,
    max_length: int,
    evals_per_epoch: int,
    patience: int,
    limit: int | None,
    layers: int | None,
    lora: bool,
    seed: int,
    threads: int | None,
    data_dir: Path | None,
    max_minutes: float | None,
    init_from: Path | None,
    class_weighting: bool,
    head_lr: float | None,
) -> None:
    """Fine-tune the two-head classifier and write a versioned artifact."""
    import torch  # noqa: PLC0415 - heavy

    from models.encoders import encoder_dir  # noqa: PLC0415
    from models.train import TrainConfig, train  # noqa: PLC0415

    settings = ctx.obj.settings()
    try:
        encoder = encoder_dir(preset, settings.state_dir / "encoders")
        cfg = TrainConfig(
            preset=preset,
            encoder_dir=str(encoder),
            data_dir=str(data_dir or settings.shared_dir / "datasets"),
            out_dir=str(settings.artifacts_dir),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr or (5e-5 if preset == "small" else 3e-5),
            max_length=max_length,
            evals_per_epoch=evals_per_epoch,
            patience=patience,
            seed=seed,
            device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
            threads=threads or settings.threads,
            layers=layers,
            lora=lora,
            limit=limit,
            max_minutes=max_minutes,
            init_from=str(init_from) if init_from else None,
            class_weighting=class_weighting,
            head_lr=head_lr or TrainConfig.head_lr,
        )
        console.print(f"training {preset} on {cfg.device} from {encoder}")
        result = train(
            cfg,
            progress=sys.stderr.isatty(),
            on_eval=lambda p: console.print(
                f"epoch {p['epoch']:.0f} step {p['step']:.0f}: "
                f"validation macro-F1 {p['val_macro_f1']:.4f}"
            ),
        )
    except SurveilError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    _print_metrics(result.metrics)
    console.print(f"artifact: {result.path} ({result.seconds:.0f} s, {result.steps} steps)")


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
    console.print(table)


@click.group("models")
def models_group() -> None:
    """Trained model artifacts."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per artifact.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """List the artifacts under the artifacts folder, newest first, with test metrics."""
    from models.artifact import list_artifacts  # noqa: PLC0415

    root = ctx.obj.settings().artifacts_dir
    rows: list[dict[str, Any]] = []
    for path in list_artifacts(root):
        metrics = _read(path / "metrics.json")
        config = _read(path / "config.json")
        rows.append(
            {
                "path": str(path),
                "preset": config.get("preset"),
                "created_at": config.get("created_at"),
                "test": {
                    k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]}
                    for k, v in metrics.get("test", {}).items()
                },
            }
        )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        console.print(f"no artifacts under {root}: train one with `surveil train`")
        return
    table = Table()
    for column in ("artifact", "preset", "created", "test accuracy / macro-F1"):
        table.add_column(column)
    for row in rows:
        scores = ", ".join(
            f"{k.removesuffix('.csv')} {v['accuracy']:.3f}/{v['macro_f1']:.3f}"
            for k, v in row["test"].items()
        )
        table.add_row(
            Path(row["path"]).name, str(row["preset"]), str(row["created_at"])[:19], scores
        )
    console.print(table)


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data
