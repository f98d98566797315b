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


_LICENSES = {
    "fpb_sentiment.csv": "Financial PhraseBank v1.0 (Malo et al. 2014), CC BY-NC-SA 3.0: "
    "non-commercial use only",
    "tfns_sentiment.csv": "Twitter Financial News Sentiment (zeroshot), MIT",
    "tfn_topics.csv": "Twitter Financial News Topic (zeroshot), MIT",
}


def model_card(
    name: str, config: dict[str, Any], data: dict[str, Any], metrics: dict[str, Any]
) -> str:
    """The MODEL_CARD.md text: data and licenses, metrics, intended use and limits."""
    lines = [
        f"# {name}",
        "",
        "A two-head financial text classifier trained by `surveil train`: sentiment "
        "(negative, neutral, positive) and event type (the 20 topics of Twitter Financial "
        "News Topic) on one shared encoder.",
        "",
        "## Model",
        "",
        f"- preset `{config.get('preset')}`, encoder `{config.get('encoder')}`"
        f"{' (first ' + str(config['layers']) + ' layers)' if config.get('layers') else ''}, "
        f"max length {config.get('max_length')} tokens",
        f"- {config.get('epochs')} epoch(s) at most, batch {config.get('batch_size')}, "
        f"lr {config.get('lr')} (heads {config.get('head_lr')}), seed {config.get('seed')}, "
        f"device {config.get('device')}; trained in {metrics.get('train_seconds')} s, "
        f"{metrics.get('steps')} steps",
        "- probabilities are temperature-scaled on the validation split (calibration.json)",
        "",
        "## Data",
        "",
        "| file | train | val | test | sha256 | license |",
        "|---|---|---|---|---|---|",
    ]
    for file, info in data.items():
        lines.append(
            f"| {file} | {info['train']} | {info['val']} | {info['test']} | "
            f"`{info['sha256'][:16]}...` | {_LICENSES.get(file, 'see its source')} |"
        )
    if "fpb_sentiment.csv" in data:
        lines += [
            "",
            "**Financial PhraseBank is licensed for non-commercial use only; so is "
            "any model trained on it, this one included.**",
        ]
    lines += [
        "",
        "## Held-out test results",
        "",
        "| data set | accuracy | macro-F1 | weighted-F1 | lexicon accuracy | lexicon macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    for file, report in metrics.get("test", {}).items():
        lex = metrics.get("lexicon_test", {}).get(file)
        lex_cols = f"{lex['accuracy']:.3f} | {lex['macro_f1']:.3f}" if lex else "n/a | n/a"
        lines.append(
            f"| {file} | {report['accuracy']:.3f} | {report['macro_f1']:.3f} | "
            f"{report['weighted_f1']:.3f} | {lex_cols} |"
        )
    lines += [
        "",
        "Splits are stratified and seeded (80/10/10 per file); numbers are on the test "
        "part, never seen in training or model selection.",
        "",
        "## Intended use",
        "",
        "Scoring news headlines, filings and social posts per ticker inside surveil, as one "
        "input to alerts a person reviews. Not for automated trading decisions. Trained on "
        "English headlines and tweets; long documents are cut at the max length. Event types "
        "from SEC 8-K items are read from the filing, not predicted.",
    ]
    return "\n".join(lines) + "\n"
