"""Evaluation with a fake scorer, the eval and classify commands, and classify's input formats."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from infra.errors import ConfigError, DecodeError, ModelError
from models.data import Example, load_csv
from models.evaluate import evaluate, evaluate_lexicon, run_eval
from models.taxonomy import SENTIMENT, TOPICS
from surveil import cli_eval
from surveil.cli_eval import classify_command, eval_command, read_texts, records

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
    text = run_eval(tmp_path, data, "sentiment", out, plot, lambda _: FakeScorer())
    assert "fake-1" in text and "lexicon" in text and "macro avg" in text
    payload = json.loads(out.read_text())
    assert payload["accuracy"] == pytest.approx(0.6)
    assert payload["baseline"]["name"] == "lexicon"
    assert plot.read_bytes().startswith(PNG_MAGIC)
    event = _csv(tmp_path / "e.csv", [("Q3 beat", "earnings")])
    assert "no event head" in run_eval(tmp_path, event, "event", None, None, lambda _: FakeScorer())


def test_run_eval_reads_the_data_before_loading_the_model(tmp_path: Path) -> None:
    def never(_: Path) -> FakeScorer:
        raise AssertionError("the model loaded before the data was checked")

    data = _csv(tmp_path / "bad.csv", [("a", "bullish")])
    with pytest.raises(ConfigError, match="bullish"):
        run_eval(tmp_path, data, "sentiment", None, None, never)


# --- the commands ----------------------------------------------------------------------


def test_eval_command_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_eval, "load_engine", lambda _: FakeScorer())
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
    monkeypatch.setattr(cli_eval, "load_engine", lambda _: FakeScorer())
    data = _csv(tmp_path / "bad.csv", [("a", "positive"), ("b", "bullish")])
    args = ["--model", str(tmp_path), "--data", str(data), "--task", "sentiment"]
    result = CliRunner().invoke(eval_command, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "'bullish'" in result.stderr


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
