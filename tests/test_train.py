"""Training end to end on a tiny model: it learns, it writes a complete artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infra.errors import ConfigError, ModelError
from models import artifact
from models.data import load_csv, stratified_split
from models.predict import fit_temperature
from models.train import TrainConfig, train
from surveil.cli import cli


def test_a_tiny_model_beats_chance_on_its_held_out_split(tiny_artifact: Path) -> None:
    metrics = json.loads((tiny_artifact / "metrics.json").read_text())
    test = metrics["test"]["fpb_sentiment.csv"]
    assert test["n"] == 60
    assert test["accuracy"] > 0.5  # uniform guessing scores 1/3, always-neutral 0.6 macro 0.25
    assert test["macro_f1"] > 0.4
    assert metrics["lexicon_test"]["fpb_sentiment.csv"]["n"] == 60


def test_the_artifact_is_complete_and_loads(tiny_artifact: Path) -> None:
    loaded = artifact.load(tiny_artifact)
    assert loaded.model.encoder.config.num_hidden_layers == 2
    assert loaded.labels["sentiment"] == ["negative", "neutral", "positive"]
    assert len(loaded.labels["event"]) == 20
    assert set(loaded.temperatures) == {"sentiment", "event"}
    data = json.loads((tiny_artifact / "data.json").read_text())
    assert set(data) == {"fpb_sentiment.csv"} and len(data["fpb_sentiment.csv"]["sha256"]) == 64
    card = (tiny_artifact / "MODEL_CARD.md").read_text()
    assert "non-commercial" in card and "| fpb_sentiment.csv |" in card


def test_splits_are_stratified_and_seeded(shared_dir: Path) -> None:
    examples = load_csv(shared_dir / "datasets" / "fpb_sentiment.csv", "sentiment")
    first, again = stratified_split(examples, seed=7), stratified_split(examples, seed=7)
    assert [e.text for e in first.test] == [e.text for e in again.test]
    share = [sum(e.label == k for e in first.test) / len(first.test) for k in range(3)]
    overall = [sum(e.label == k for e in examples) / len(examples) for k in range(3)]
    assert np.allclose(share, overall, atol=0.01)
    assert not {e.text for e in first.test} & {e.text for e in first.train}


def test_unknown_labels_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nup we go,bullish\ndown,negative\nmeh,sideways\n")
    with pytest.raises(ConfigError, match="'bullish', 'sideways'"):
        load_csv(path, "sentiment")


def test_temperature_scaling_fits_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), labels] += 1.0
    assert fit_temperature(logits * 5, labels) > 3.0  # sharpened 5x: undo most of it
    assert 0.5 < fit_temperature(logits, labels) < 2.0


def _continue(tiny_artifact: Path, out: Path, seed: int) -> TrainConfig:
    config = json.loads((tiny_artifact / "config.json").read_text())
    keep = {k: v for k, v in config.items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(
        **{
            **keep,
            "datasets": tuple(keep["datasets"]),
            "out_dir": str(out),
            "epochs": 1,
            "seed": seed,
            "init_from": str(tiny_artifact),
        }
    )


def test_training_continues_from_an_artifact_trained_on_the_same_splits(
    tiny_artifact: Path, tmp_path: Path
) -> None:
    before = json.loads((tiny_artifact / "metrics.json").read_text())["test"]
    result = train(_continue(tiny_artifact, tmp_path, seed=13), progress=False)
    after = result.metrics["test"]["fpb_sentiment.csv"]
    assert after["n"] == before["fpb_sentiment.csv"]["n"]  # the same held-out rows
    assert after["accuracy"] > 0.5  # it starts trained, and one more epoch keeps it so
    saved = json.loads((result.path / "config.json").read_text())
    assert saved["init_from"] == str(tiny_artifact)


def test_continuing_on_other_splits_is_refused(tiny_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="leak test rows"):
        train(_continue(tiny_artifact, tmp_path, seed=99), progress=False)


def test_the_train_command_records_its_options_in_the_artifact(
    tmp_path: Path, shared_dir: Path
) -> None:
    env = {
        "SURVEIL_STATE_DIR": str(tmp_path / "state"),
        "SURVEIL_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "SURVEIL_SHARED_DIR": str(shared_dir),
    }
    args = "train --preset small --layers 2 --limit 200 --epochs 1 --threads 2"
    options = "--no-class-weighting --head-lr 2e-4 --lr 1e-4"
    result = CliRunner().invoke(cli, [*args.split(), *options.split()], env=env)
    assert result.exit_code == 0, result.output
    [folder] = (tmp_path / "artifacts").iterdir()
    config = json.loads((folder / "config.json").read_text())
    assert (config["class_weighting"], config["head_lr"], config["lr"]) == (False, 2e-4, 1e-4)
    assert config["limit"] == 200 and config["layers"] == 2
