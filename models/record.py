"""Write what a training run produced: the artifact, its test metrics, data record and card."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from models import artifact
from models.data import Split, file_sha256
from models.encoders import PRESETS
from models.evaluate import evaluate_lexicon
from models.network import MultiTaskModel
from models.predict import evaluate_split
from models.taxonomy import SENTIMENT, TOPICS

log = logging.getLogger(__name__)

_LICENSES = {
    "fpb_sentiment.csv": "Financial PhraseBank v1.0 (Malo et al. 2014), CC BY-NC-SA 3.0: "
    "non-commercial use only",
    "tfns_sentiment.csv": "Twitter Financial News Sentiment (zeroshot), MIT",
    "tfn_topics.csv": "Twitter Financial News Topic (zeroshot), MIT",
}
_INTRO = (
    "A two-head financial text classifier trained by `surveil train`: sentiment "
    "(negative, neutral, positive) and event type (the 20 topics of Twitter Financial "
    "News Topic) on one shared encoder."
)
_SPLITS = (
    "Splits are stratified and seeded (80/10/10 per file); numbers are on the test "
    "part, never seen in training or model selection."
)
_INTENDED_USE = (
    "Scoring news headlines, filings and social posts per ticker inside surveil, as one "
    "input to alerts a person reviews. Not for automated trading decisions. Trained on "
    "English headlines and tweets; long documents are cut at the max length. Event types "
    "from SEC 8-K items are read from the filing, not predicted."
)


def held_out_metrics(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, Split],
    max_length: int,
) -> dict[str, dict[str, Any]]:
    """Score the model on every split's test rows (CPU), and the lexicon on sentiment ones."""
    found: dict[str, dict[str, Any]] = {"test": {}, "lexicon_test": {}}
    for name, split in splits.items():
        if not split.test:
            continue
        report = evaluate_split(model, tokenizer, split.test, max_length=max_length)
        found["test"][name] = report.to_json()
        lexicon = evaluate_lexicon(split.test, split.test[0].task)
        if lexicon is not None:
            found["lexicon_test"][name] = lexicon.to_json()
    return found


def write_artifact(
    settings: dict[str, Any],
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    splits: dict[str, Split],
    metrics: dict[str, Any],
    temperatures: dict[str, float],
) -> Path:
    """Save a trained model as ``<out_dir>/<preset>-<stamp>-<hash8>``; return that folder.

    Args:
        settings: the run's training settings (``TrainConfig`` as a dict), kept in config.json.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    digest = artifact.content_hash(model)
    folder = Path(settings["out_dir"]) / f"{settings['preset']}-{stamp}-{digest[:8]}"
    config = {
        **settings,
        "encoder": PRESETS.get(settings["preset"], Path(settings["encoder_dir"]).name),
        "created_at": datetime.now(UTC).isoformat(),
        "torch": torch.__version__,
    }
    labels = {"sentiment": list(SENTIMENT), "event": list(TOPICS)}
    artifact.save(folder, model, tokenizer, labels, config, temperatures)
    data_dir = Path(settings["data_dir"])
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
    (folder / "MODEL_CARD.md").write_text(model_card(folder.name, config, data, metrics), "utf-8")
    log.info("wrote %s", folder)
    return folder


def model_card(
    name: str, config: dict[str, Any], data: dict[str, Any], metrics: dict[str, Any]
) -> str:
    """Return the MODEL_CARD.md text: data and licenses, metrics, intended use and limits."""
    lines = [
        f"# {name}",
        "",
        _INTRO,
        "",
        *_model_lines(config, metrics),
        "",
        *_data_lines(data),
        "",
        *_test_lines(metrics),
        "",
        _SPLITS,
        "",
        "## Intended use",
        "",
        _INTENDED_USE,
    ]
    return "\n".join(lines) + "\n"


def _model_lines(config: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    layers = f" (first {config['layers']} layers)" if config.get("layers") else ""
    return [
        "## Model",
        "",
        f"- preset `{config.get('preset')}`, encoder `{config.get('encoder')}`{layers}, "
        f"max length {config.get('max_length')} tokens",
        f"- {config.get('epochs')} epoch(s) at most, batch {config.get('batch_size')}, "
        f"lr {config.get('lr')} (heads {config.get('head_lr')}), seed {config.get('seed')}, "
        f"device {config.get('device')}; trained in {metrics.get('train_seconds')} s, "
        f"{metrics.get('steps')} steps",
        "- probabilities are temperature-scaled on the validation split (calibration.json)",
    ]


def _data_lines(data: dict[str, Any]) -> list[str]:
    rows = [
        f"| {file} | {info['train']} | {info['val']} | {info['test']} | "
        f"`{info['sha256'][:16]}...` | {_LICENSES.get(file, 'see its source')} |"
        for file, info in data.items()
    ]
    lines = _table("Data", ("file", "train", "val", "test", "sha256", "license"), rows)
    if "fpb_sentiment.csv" in data:
        lines += [
            "",
            "**Financial PhraseBank is licensed for non-commercial use only; so is "
            "any model trained on it, this one included.**",
        ]
    return lines


def _test_lines(metrics: dict[str, Any]) -> list[str]:
    lexicon = metrics.get("lexicon_test", {})
    rows = [
        f"| {file} | {report['accuracy']:.3f} | {report['macro_f1']:.3f} | "
        f"{report['weighted_f1']:.3f} | {_lexicon_cells(lexicon.get(file))} |"
        for file, report in metrics.get("test", {}).items()
    ]
    columns = ("data set", "accuracy", "macro-F1", "weighted-F1")
    return _table("Held-out test results", (*columns, "lexicon accuracy", "lexicon macro-F1"), rows)


def _lexicon_cells(report: dict[str, Any] | None) -> str:
    return f"{report['accuracy']:.3f} | {report['macro_f1']:.3f}" if report else "n/a | n/a"


def _table(title: str, columns: tuple[str, ...], rows: list[str]) -> list[str]:
    """Return a markdown section of one table: its title, header, rule and rows."""
    return [f"## {title}", "", f"| {' | '.join(columns)} |", "|" + "---|" * len(columns), *rows]
