"""`surveil eval` and `surveil classify`: score a model on labelled data, or label texts."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np

from infra.errors import ConfigError, DecodeError
from infra.settings import Settings
from models.engine import InferenceEngine
from models.evaluate import Scorer, run_eval
from models.lexicon import LexiconClassifier
from models.taxonomy import NO_EVENT, SENTIMENT, TOPICS
from surveil.cli.base import Command, SettingsContext, env_option, pass_settings
from surveil.compose.runtime import load_model

BATCH = 256
TOP_EVENTS = 3

TextFormat = Literal["lines", "csv", "jsonl"]


def load_engine(path: Path, settings: Settings) -> InferenceEngine:
    """Load a trained artifact folder as the inference engine, on the configured device,
    threads and precision (SURVEIL_DEVICE, SURVEIL_THREADS, SURVEIL_PRECISION).

    Raises:
        ConfigError: ``path`` is not a trained artifact folder.
    """
    model = load_model(settings, str(path))
    if not isinstance(model, InferenceEngine):
        msg = f"{path}: not a trained model artifact"
        raise ConfigError(msg)
    return model


# --- input of classify -----------------------------------------------------------------


def detect_format(name: str | None, first_line: str) -> TextFormat:
    """Tell the input format from the file suffix, else from its first non-blank line.

    ``.jsonl`` or a line opening with ``{`` is JSONL; ``.csv`` or a header with a ``text``
    field is CSV; anything else is one text per line.
    """
    suffix = Path(name).suffix.lower() if name else ""
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    header = next(csv.reader([first_line]), [])
    if "text" in (field.strip() for field in header):
        return "csv"
    return "lines"


def read_texts(lines: Iterable[str], name: str | None = None) -> Iterator[str]:
    """Yield the texts of plain lines, a CSV with a ``text`` column, or JSONL with ``text``.

    Blank texts are skipped.

    Raises:
        DecodeError: a CSV lacks the column, or a JSONL line is not an object with a string
            ``text``.
    """
    where = name or "input"
    stream = iter(lines)
    head: list[str] = []
    for line in stream:
        head.append(line)
        if line.strip():
            break
    if not head or not head[-1].strip():
        return
    fmt = detect_format(name, head[-1])
    rest = itertools.chain(head, stream)
    if fmt == "lines":
        yield from (line.strip() for line in rest if line.strip())
    elif fmt == "csv":
        reader = csv.DictReader(rest)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            reason, msg = "missing_field", f"{where}: the CSV header has no 'text' column"
            raise DecodeError(reason, msg)
        yield from (t for row in reader if (t := row["text"] or "").strip())
    else:
        yield from _jsonl_texts(rest, where)


def _jsonl_texts(lines: Iterable[str], where: str) -> Iterator[str]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            reason, msg = "bad_json", f"{where} line {number}: {exc}"
            raise DecodeError(reason, msg) from exc
        text = value.get("text") if isinstance(value, dict) else None
        if not isinstance(text, str):
            reason = "missing_field"
            msg = f"{where} line {number}: expected an object with a string 'text'"
            raise DecodeError(reason, msg)
        if text.strip():
            yield text


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# --- output of classify ----------------------------------------------------------------


def _prob(value: Any) -> float:
    # + 0.0 turns the -0.0 that some lexicon counts give into 0.0.
    return round(float(value), 6) + 0.0


def _event(probs: np.ndarray, names: Sequence[str], min_event_prob: float) -> dict[str, Any]:
    """The top event of one text, or ``none`` below ``min_event_prob``; its top probabilities."""
    if not len(probs):
        return {"label": NO_EVENT, "prob": 0.0, "probs": {}}
    top = probs.argsort()[::-1][:TOP_EVENTS]
    p_top = _prob(probs[top[0]])
    confident = p_top >= min_event_prob
    return {
        "label": names[int(top[0])] if confident else NO_EVENT,
        "prob": p_top if confident else 0.0,
        "probs": {names[int(j)]: _prob(probs[j]) for j in top},
    }


def records(
    texts: Sequence[str],
    sentiment: np.ndarray,
    events: np.ndarray,
    version: str,
    event_labels: Sequence[str] | None = None,
    min_event_prob: float = 0.0,
) -> list[dict[str, Any]]:
    """One JSON-ready object per text: sentiment label and probabilities, the top events.

    Args:
        events: (n, len(event_labels)) probabilities, or (n, 0) for a model with no event
            head, whose event is ``none``.
        event_labels: names of the event columns (default: TOPICS).
        min_event_prob: below this the event label is ``none`` with prob 0, as the engine's
            ``classify`` says; the top probabilities are given still.
    """
    names = TOPICS if event_labels is None else event_labels
    return [
        {
            "text": text,
            "sentiment": {
                "label": SENTIMENT[int(sentiment[i].argmax())],
                "probs": {s: _prob(p) for s, p in zip(SENTIMENT, sentiment[i], strict=True)},
            },
            "event": _event(events[i], names, min_event_prob),
            "model": version,
        }
        for i, text in enumerate(texts)
    ]


class _LexiconScorer:
    """The lexicon as a scorer: sentiment probabilities and an empty event head."""

    def __init__(self) -> None:
        self._lexicon = LexiconClassifier()

    @property
    def version(self) -> str:
        return self._lexicon.version

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        scores = self._lexicon.classify(texts)
        sentiment = np.array([s.probs for s in scores], dtype=np.float64).reshape(-1, 3)
        return sentiment, np.zeros((len(texts), 0))


# --- commands --------------------------------------------------------------------------


@click.command("eval", cls=Command)
@env_option(
    "--model",
    "SURVEIL_MODEL",
    "Trained model artifact folder, or 'lexicon' (sentiment only, every row).",
    required=True,
)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled CSV with 'text' and 'label' columns.",
)
@click.option(
    "--task", required=True, type=click.Choice(["sentiment", "event"]), help="Which head to score."
)
@click.option(
    "--split",
    type=click.Choice(["test", "validation", "train", "all"]),
    help="Rows to score: the artifact's own split of its training file, re-created from its "
    "record, or all. [default: test for one of the artifact's training files, else all]",
)
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here."
)
@click.option(
    "--plot",
    "plot_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the confusion matrix PNG here.",
)
@click.option("--batch", default=BATCH, show_default=True, type=click.IntRange(min=1))
@pass_settings
def eval_command(
    ctx: SettingsContext,
    model: str,
    data: Path,
    task: str,
    split: str | None,
    json_out: Path | None,
    plot_out: Path | None,
    batch: int,
) -> None:
    """Score a model on labelled data: per-class and averaged F1, beside the lexicon.

    Warns on stderr when rows scored were used to train the model or it predicts one class.
    """
    lexicon = model == "lexicon"
    if lexicon and task != "sentiment":
        msg = "--model lexicon scores sentiment only: it has no event head"
        raise ConfigError(msg)
    if not lexicon and not Path(model).exists():
        msg = f"{model!r} is neither 'lexicon' nor a folder"
        raise click.BadParameter(msg, param_hint="--model")

    def factory(path: Path) -> Scorer:
        return _LexiconScorer() if lexicon else load_engine(path, ctx.settings())

    result = run_eval(
        Path(model),
        data,
        task,
        json_out,
        plot_out,
        factory,
        batch=batch,
        split=split,
        baseline=not lexicon,
    )
    click.echo(result.text)
    for warning in result.warnings:
        click.echo(warning, err=True)


@click.command("classify", cls=Command)
@env_option(
    "--model",
    "SURVEIL_MODEL",
    "'lexicon' or the path of a trained model artifact.",
    default="lexicon",
    show_default=True,
)
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@pass_settings
def classify_command(ctx: SettingsContext, model: str, file: str) -> None:
    """Label texts from FILE or stdin (lines, CSV with 'text', or JSONL); print JSONL."""
    name = None if file == "-" else file
    scorer: Scorer
    if model == "lexicon":
        scorer, labels, threshold = _LexiconScorer(), None, 0.0
    else:
        engine = load_engine(Path(model), ctx.settings())
        scorer, labels, threshold = engine, engine.event_labels, engine.config.min_event_prob
    try:
        with click.open_file(file, encoding="utf-8") as lines:
            for batch in _batches(read_texts(lines, name), BATCH):
                sentiment, events = scorer.probabilities(batch)
                for record in records(batch, sentiment, events, scorer.version, labels, threshold):
                    click.echo(json.dumps(record, ensure_ascii=False))
    except OSError as exc:
        reason, msg = "unreadable", f"{name or 'stdin'}: {exc}"
        raise DecodeError(reason, msg) from exc
    except UnicodeDecodeError as exc:
        reason, msg = "bad_encoding", f"{name or 'stdin'}: {exc}"
        raise DecodeError(reason, msg) from exc
