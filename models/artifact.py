"""Trained-model artifacts: a versioned folder with everything needed to score offline.

```
<artifacts>/<preset>-<YYYYmmdd-HHMMSS>-<hash8>/
    model.safetensors   encoder and both heads (fp32)
    encoder/            encoder config.json and tokenizer files
    labels.json         {"sentiment": [...], "event": [...]}
    config.json         preset, encoder, max_length, training hyper-parameters, seed
    calibration.json    {"sentiment": T, "event": T}: softmax temperatures (validation NLL)
    data.json           the data files used, their sha256, split sizes
    metrics.json        held-out test metrics per data set and task, with the lexicon's
    MODEL_CARD.md       data, licenses, metrics, intended use
```
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from infra.errors import ModelError
from models.network import MultiTaskModel, build

WEIGHTS = "model.safetensors"
REQUIRED = (WEIGHTS, "encoder/config.json", "labels.json", "config.json")


@dataclass
class Artifact:
    """A loaded artifact: model (eval mode, fp32, CPU), tokenizer and its metadata."""

    path: Path
    model: MultiTaskModel
    tokenizer: PreTrainedTokenizerBase
    labels: dict[str, list[str]]
    config: dict[str, Any]
    temperatures: dict[str, float]

    @property
    def version(self) -> str:
        """The artifact's folder name, stored with every score it makes."""
        return self.path.name


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def save(
    folder: Path,
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    labels: dict[str, list[str]],
    config: dict[str, Any],
    temperatures: dict[str, float],
) -> None:
    """Write the weights, encoder config, tokenizer and metadata into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    save_file(state, str(folder / WEIGHTS))
    model.encoder.config.save_pretrained(folder / "encoder")
    tokenizer.save_pretrained(folder / "encoder")
    for name, value in (("labels", labels), ("config", config), ("calibration", temperatures)):
        (folder / f"{name}.json").write_text(json.dumps(value, indent=2) + "\n", "utf-8")


def is_artifact(folder: Path) -> bool:
    """Whether a folder looks like a complete artifact."""
    return all((folder / name).is_file() for name in REQUIRED)


def load(folder: Path) -> Artifact:
    """Load an artifact from its folder, on the CPU in fp32.

    Raises:
        ModelError: files are missing or do not fit together.
    """
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        msg = f"{folder} is not a model artifact: missing {', '.join(missing)}"
        raise ModelError(msg)
    try:
        labels = _read_json(folder / "labels.json")
        config = _read_json(folder / "config.json")
        calibration = folder / "calibration.json"
        temperatures = _read_json(calibration) if calibration.is_file() else {}
        model = build(
            str(folder / "encoder"),
            len(labels["sentiment"]),
            len(labels["event"]),
            pretrained=False,
        )
        model.load_state_dict(load_file(str(folder / WEIGHTS)), strict=True)
        tokenizer = AutoTokenizer.from_pretrained(folder / "encoder", local_files_only=True)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        msg = f"cannot load the model artifact {folder}: {exc}"
        raise ModelError(msg) from exc
    model.eval()
    return Artifact(
        folder.resolve(),
        model,
        tokenizer,
        labels,
        config,
        {k: float(v) for k, v in temperatures.items()},
    )


def list_artifacts(root: Path) -> list[Path]:
    """The artifact folders under ``root``, newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_artifact(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def write_json(path: Path, value: Any) -> None:
    """Write pretty JSON with a trailing newline."""
    path.write_text(json.dumps(value, indent=2, default=str) + "\n", "utf-8")


def content_hash(model: torch.nn.Module) -> str:
    """sha256 over the model's tensors, so two artifacts with equal weights share it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
