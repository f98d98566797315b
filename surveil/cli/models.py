"""`surveil models list`: the trained artifacts, newest first, with their test metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from models.artifact import list_artifacts
from surveil.cli.base import Group, SettingsContext, pass_settings
from surveil.cli.console import out


@click.group("models", cls=Group)
def models_group() -> None:
    """Trained model artifacts."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per artifact.")
@pass_settings
def models_list(ctx: SettingsContext, as_json: bool) -> None:
    """List the artifacts under the artifacts folder, newest first, with test metrics."""
    root = ctx.settings().artifacts_dir
    rows = [_summary(path) for path in list_artifacts(root)]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        out.print(f"no artifacts under {root}: train one with `surveil train`")
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
    out.print(table)


def _summary(path: Path) -> dict[str, Any]:
    """An artifact's folder, preset, creation time and test metrics, from its JSON files."""
    metrics = _read(path / "metrics.json")
    config = _read(path / "config.json")
    return {
        "path": str(path),
        "preset": config.get("preset"),
        "created_at": config.get("created_at"),
        "test": {
            k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]}
            for k, v in metrics.get("test", {}).items()
        },
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data
