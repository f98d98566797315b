"""Evaluation with a fake scorer, the eval command on a real artifact's splits, the classify
command, and classify's input formats."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infra.errors import ConfigError, DecodeError, ModelError
from infra.settings import Settings
from models.data import Example, load_csv, load_datasets
from models.evaluate import evaluate, evaluate_lexicon, run_eval
from models.taxonomy import SENTIMENT, TOPICS
from surveil.cli import eval as cli_eval
from surveil.cli.eval import classify_command, eval_command, read_texts, records

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeScorer:
    """Says the label its text names ("... negative"), or neutral / earnings otherwise."""

    version = "fake-1"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        self.batches.append(len(texts))
        sentiment = np.full((len(texts), 3), 0.1)
        events = np.full((len(texts), len(TOPICS)), 0.01)
        for i, text in enumerate(texts):
            word = text.split()[-1]
            sentiment[i, SENTIMENT.index(word) if word in SENTIMENT else 1] = 0.8
            events[i, TOPICS.index(word) if word in TOPICS else TOPICS.index("earnings")] = 0.81
        return sentiment, events


def _examples(task: str, rows: list[tuple[str, str]]) -> list[Example]:
    labels = SENTIMENT if task == "sentiment" else TOPICS
    return [Example(text, task, labels.index(label), "t.csv") for text, label in rows]


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    return path


SENTIMENT_ROWS = [
    ("Profit fell sharply, shares negative", "negative"),
    ("The company reported strong gains positive", "positive"),
    ("Board meets on Tuesday neutral", "neutral"),
    ("Losses widened, outlook cut positive", "negative"),
    ("Record revenue and a raised dividend", "positive"),
]


def test_evaluate_with_fake_scorer_in_batches() -> None:
    scorer = FakeScorer()
    report = evaluate(scorer, _examples("sentiment", SENTIMENT_ROWS), "sentiment", batch=2)
    assert scorer.batches == [2, 2, 1]
    # predicted: negative, positive, neutral, positive, neutral
    assert report.confusion == [[1, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert report.accuracy == pytest.approx(3 / 5)


def test_evaluate_event_head() -> None:
    rows = [
        ("Fed holds fed_central_banks", "fed_central_banks"),
        ("Q3 beat", "earnings"),
        ("Stock up 5%", "stock_movement"),
    ]
    report = evaluate(FakeScorer(), _examples("event", rows), "event")
    assert report.labels == TOPICS
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.per_class["stock_movement"].recall == 0.0


def test_evaluate_event_columns_follow_the_scorers_labels() -> None:
    class Reversed(FakeScorer):
        event_labels = tuple(reversed(TOPICS))

        def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            sentiment, events = super().probabilities(texts)
            return sentiment, events[:, ::-1]

    rows = [("Fed holds fed_central_banks", "fed_central_banks"), ("Q3 beat", "earnings")]
    assert evaluate(Reversed(), _examples("event", rows), "event").accuracy == 1.0


def test_evaluate_rejects_wrong_shapes() -> None:
    class Broken(FakeScorer):
        def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((len(texts), 2)), np.zeros((len(texts), 20))

    with pytest.raises(ModelError, match="expected"):
        evaluate(Broken(), _examples("sentiment", SENTIMENT_ROWS), "sentiment")


def test_lexicon_baseline_sentiment_only() -> None:
    examples = _examples("sentiment", SENTIMENT_ROWS)
    report = evaluate_lexicon(examples, "sentiment")
    assert report is not None and report.n == 5 and report.labels == SENTIMENT
    assert evaluate_lexicon(_examples("event", [("Q3 beat", "earnings")]), "event") is None


def test_unknown_labels_name_every_one(tmp_path: Path) -> None:
    path = _csv(tmp_path / "bad.csv", [("a", "positive"), ("b", "bullish"), ("c", "meh")])
    with pytest.raises(ConfigError, match=r"'bullish', 'meh'"):
        load_csv(path, "sentiment")


def test_run_eval_text_json_and_plot(tmp_path: Path) -> None:
    data = _csv(tmp_path / "s.csv", SENTIMENT_ROWS)
    out, plot = tmp_path / "out" / "r.json", tmp_path / "out" / "r.png"
    text = run_eval(tmp_path, data, "sentiment", out, plot, lambda _: FakeScorer()).text
    assert "fake-1" in text and "lexicon" in text and "macro avg" in text
    payload = json.loads(out.read_text())
    assert payload["accuracy"] == pytest.approx(0.6)
    assert payload["baseline"]["name"] == "lexicon"
    assert plot.read_bytes().startswith(PNG_MAGIC)
    event = _csv(tmp_path / "e.csv", [("Q3 beat", "earnings")])
    result = run_eval(tmp_path, event, "event", None, None, lambda _: FakeScorer())
    assert "no event head" in result.text


def test_run_eval_reads_the_data_before_loading_the_model(tmp_path: Path) -> None:
    def never(_: Path) -> FakeScorer:
        raise AssertionError("the model loaded before the data was checked")

    data = _csv(tmp_path / "bad.csv", [("a", "bullish")])
    with pytest.raises(ConfigError, match="bullish"):
        run_eval(tmp_path, data, "sentiment", None, None, never)


# --- the commands ----------------------------------------------------------------------


def test_eval_command_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_eval, "load_engine", lambda *_: FakeScorer())
    data = _csv(tmp_path / "s.csv", SENTIMENT_ROWS)
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    args = ["--model", str(tmp_path), "--data", str(data), "--task", "sentiment"]
    result = CliRunner().invoke(eval_command, [*args, "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "negative" in result.output and "weighted avg" in result.output
    assert {"accuracy", "macro_f1", "weighted_f1", "per_class"} <= set(json.loads(out.read_text()))
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_eval_command_unknown_labels_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_eval, "load_engine", lambda *_: FakeScorer())
    data = _csv(tmp_path / "bad.csv", [("a", "positive"), ("b", "bullish")])
    args = ["--model", str(tmp_path), "--data", str(data), "--task", "sentiment"]
    result = CliRunner().invoke(eval_command, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "'bullish'" in result.stderr


# --- eval on a real artifact: which rows, and what it warns of ---------------------------

FPB = "fpb_sentiment.csv"


def _eval(*args: str | Path) -> tuple[int, str, str, dict]:
    """Run eval writing JSON; return the exit code, stdout, stderr and the JSON report."""
    out = Path(str(args[args.index("--json") + 1])) if "--json" in args else None
    result = CliRunner().invoke(eval_command, [str(a) for a in args])
    report = json.loads(out.read_text()) if out is not None and out.is_file() else {}
    return result.exit_code, result.stdout, result.stderr, report


def _training_split(tiny_artifact: Path, shared_dir: Path) -> tuple[list[Example], list[Example]]:
    """The artifact's train and test rows, as training made them from its config."""
    config = json.loads((tiny_artifact / "config.json").read_text())
    folder = shared_dir / "datasets"
    split = load_datasets(folder, (FPB,), config["seed"], config["limit"])[FPB]
    return split.train, split.test


def _write(path: Path, examples: Sequence[Example]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((e.text, SENTIMENT[e.label]) for e in examples)
    return path


def test_eval_scores_the_artifacts_held_out_rows_of_its_own_file(
    tiny_artifact: Path, shared_dir: Path, tmp_path: Path
) -> None:
    data = shared_dir / "datasets" / FPB
    out = tmp_path / "r.json"
    code, stdout, stderr, report = _eval(
        "--model", tiny_artifact, "--data", data, "--task", "sentiment", "--json", out
    )
    assert code == 0, stderr
    recorded = json.loads((tiny_artifact / "metrics.json").read_text())
    held_out, lexicon = recorded["test"][FPB], recorded["lexicon_test"][FPB]
    assert report["split"] == "test" and "split test" in stdout  # the default, said
    assert (
        report["n"]
        == held_out["n"]
        == json.loads((tiny_artifact / "data.json").read_text())[FPB]["test"]
    )
    assert [sum(row) for row in report["confusion"]] == [sum(r) for r in held_out["confusion"]]
    # the lexicon beside it scores the same rows: its numbers match those of training's test
    assert report["baseline"]["confusion"] == lexicon["confusion"]
    assert report["train_overlap"] == 0 and report["warnings"] == []
    assert "warning" not in stderr


def test_eval_warns_of_training_rows_for_split_train_and_all(
    tiny_artifact: Path, shared_dir: Path, tmp_path: Path
) -> None:
    data = shared_dir / "datasets" / FPB
    trained = json.loads((tiny_artifact / "data.json").read_text())[FPB]["train"]
    args = ("--model", tiny_artifact, "--data", data, "--task", "sentiment", "--json")
    code, _, stderr, report = _eval(*args, tmp_path / "train.json", "--split", "train")
    assert code == 0, stderr
    assert report["n"] == report["train_overlap"] == trained
    line = (
        f"warning: {trained:,} of {trained:,} rows were used to train this model; use --split test"
    )
    assert line in stderr.splitlines() and report["warnings"] == [line]
    code, stdout, stderr, report = _eval(*args, tmp_path / "all.json", "--split", "all")
    assert code == 0, stderr
    total = len(load_csv(data, "sentiment"))
    assert report["n"] == total and "split all" in stdout
    # at least the training rows; a few more where the file repeats a training text
    assert trained <= report["train_overlap"] < trained + 10
    assert f"of {total:,} rows were used to train this model; use --split test" in stderr


def test_eval_of_another_file_counts_its_training_rows_and_refuses_a_split(
    tiny_artifact: Path, shared_dir: Path, tmp_path: Path
) -> None:
    train_rows, test_rows = _training_split(tiny_artifact, shared_dir)
    data = _write(tmp_path / "mine.csv", [*train_rows[:7], *test_rows[:5]])
    out = tmp_path / "r.json"
    args = ("--model", tiny_artifact, "--data", data, "--task", "sentiment")
    code, stdout, stderr, report = _eval(*args, "--json", out)
    assert code == 0, stderr
    assert report["split"] == "all" and report["n"] == 12 and report["train_overlap"] == 7
    assert "warning: 7 of 12 rows were used to train this model" in stderr
    code, _, stderr, _ = _eval(*args, "--split", "test")
    assert code == 1 and "not one of this model's training files (fpb_sentiment.csv)" in stderr


def test_eval_names_a_changed_training_file_and_refuses_its_split(
    tiny_artifact: Path, shared_dir: Path, tmp_path: Path
) -> None:
    train_rows, test_rows = _training_split(tiny_artifact, shared_dir)
    changed = tmp_path / "copy" / FPB  # the training file's name, other contents
    changed.parent.mkdir()
    _write(changed, [*test_rows[:4], *train_rows[:3]])
    args = ("--model", tiny_artifact, "--data", changed, "--task", "sentiment")
    code, _, stderr, _ = _eval(*args, "--split", "test")
    assert code == 1
    assert f"differs from the {FPB} this model was trained on" in stderr
    assert "would not be the artifact's" in stderr
    code, stdout, stderr, report = _eval(*args, "--json", tmp_path / "r.json")
    assert code == 0, stderr
    assert report["split"] == "all" and "has changed since training" in stdout
    assert any(f"differs from the {FPB}" in w for w in report["warnings"])
    assert report["train_overlap"] == 3  # checked against the recorded training file


def test_eval_warns_when_the_model_predicts_one_class(
    tiny_artifact: Path, shared_dir: Path, tmp_path: Path
) -> None:
    _, test_rows = _training_split(tiny_artifact, shared_dir)
    engine = cli_eval.load_engine(tiny_artifact, Settings())
    predicted = engine.probabilities([e.text for e in test_rows])[0].argmax(axis=1)
    # held-out rows of every true label that the model itself calls neutral
    neutral = [e for e, p in zip(test_rows, predicted, strict=True) if p == 1]
    assert len({e.label for e in neutral}) > 1
    data = _write(tmp_path / "called_neutral.csv", neutral)
    code, _, stderr, report = _eval(
        "--model", tiny_artifact, "--data", data, "--task", "sentiment", "--json", tmp_path / "r"
    )
    assert code == 0, stderr
    line = "warning: the model predicted 'neutral' for every row"
    assert line in stderr.splitlines() and line in report["warnings"]
    assert report["n"] == len(neutral) and report["train_overlap"] == 0


def test_eval_of_the_lexicon_scores_every_row_and_has_no_split(tmp_path: Path) -> None:
    data = _csv(tmp_path / "s.csv", SENTIMENT_ROWS)
    code, stdout, stderr, report = _eval(
        "--model", "lexicon", "--data", data, "--task", "sentiment", "--json", tmp_path / "r"
    )
    assert code == 0, stderr
    assert report["model"].startswith("lexicon") and report["n"] == 5
    assert report["split"] == "all" and report["baseline"] is None
    code, _, stderr, _ = _eval(
        "--model", "lexicon", "--data", data, "--task", "sentiment", "--split", "test"
    )
    assert code == 1 and "needs a trained model artifact" in stderr


def test_classify_lexicon_three_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text(
        "Profit fell on losses\n\nRecord gains\nBoard meets Tuesday\n", encoding="utf-8"
    )
    result = CliRunner().invoke(classify_command, ["--model", "lexicon", str(path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["text"] for line in lines] == [
        "Profit fell on losses",
        "Record gains",
        "Board meets Tuesday",
    ]
    for line in lines:
        assert set(line) == {"text", "sentiment", "event", "model"}
        assert set(line["sentiment"]) == {"label", "probs"}
        assert list(line["sentiment"]["probs"]) == list(SENTIMENT)
        assert line["event"] == {"label": "none", "prob": 0.0, "probs": {}}
        assert line["model"].startswith("lexicon")
    assert lines[0]["sentiment"]["label"] == "negative"


def test_classify_reads_stdin_and_reports_bad_jsonl() -> None:
    runner = CliRunner()
    result = runner.invoke(classify_command, ["--model", "lexicon"], input='{"text": "Gains"}\n')
    assert result.exit_code == 0 and json.loads(result.output)["text"] == "Gains"
    result = runner.invoke(classify_command, ["--model", "lexicon"], input='{"text": 1}\n')
    assert result.exit_code == 1 and "line 1" in result.stderr


def test_records_top_events_and_threshold() -> None:
    events = np.full((2, len(TOPICS)), 0.02)
    events[0, TOPICS.index("ipo")], events[0, TOPICS.index("dividend")] = 0.5, 0.1
    events[1, TOPICS.index("macro")] = 0.2
    sentiment = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    first, second = records(["x", "y"], sentiment, events, "m", min_event_prob=0.35)
    assert first["sentiment"] == {
        "label": "positive",
        "probs": {"negative": 0.1, "neutral": 0.2, "positive": 0.7},
    }
    assert first["event"]["label"] == "ipo" and first["event"]["prob"] == 0.5
    assert (
        list(first["event"]["probs"])[:2] == ["ipo", "dividend"]
        and len(first["event"]["probs"]) == 3
    )
    assert second["event"]["label"] == "none" and second["event"]["prob"] == 0.0
    assert list(second["event"]["probs"])[0] == "macro"


# --- classify's input formats ----------------------------------------------------------

QUOTED = '"He said ""sell"""'  # a CSV field with quotes inside
TEXTS = ["Shares rose 5%, beating estimates", 'He said "sell"', "Über café"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("in.txt", 'Shares rose 5%, beating estimates\n\nHe said "sell"\n  Über café  \n'),
        (None, '\nShares rose 5%, beating estimates\nHe said "sell"\nÜber café'),
        ("in.csv", 'id,text\n1,"Shares rose 5%, beating estimates"\n2,' + QUOTED + "\n3,Über café"),
        (None, 'text,src\n"Shares rose 5%, beating estimates",x\n' + QUOTED + ",y\nÜber café,z"),
        ("in.jsonl", "\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(TEXTS))),
        (None, "\n" + "\n\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n"),
    ],
)
def test_input_formats_give_the_same_texts(name: str | None, content: str) -> None:
    assert list(read_texts(content.splitlines(keepends=True), name)) == TEXTS


def test_input_errors_and_empty() -> None:
    assert list(read_texts([], None)) == []
    assert list(read_texts(["\n", "  \n"], None)) == []
    with pytest.raises(DecodeError, match="no 'text' column"):
        list(read_texts(["headline,label\n", "x,y\n"], "in.csv"))
    with pytest.raises(DecodeError, match="line 2"):
        list(read_texts(['{"text": "a"}\n', "{not json\n"], None))
