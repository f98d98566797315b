"""`surveil eval` and `surveil classify`: score a model on labelled data, or label texts.

Heavy modules (numpy, torch, the engine) load inside the commands so `surveil --help` stays fast.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from infra.errors import ConfigError, DecodeError, SurveilError

if TYPE_CHECKING:
    import numpy as np

    from models.evaluate import Scorer

BATCH = 256
TOP_EVENTS = 3

TextFormat = Literal["lines", "csv", "jsonl"]


def _fail(exc: SurveilError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def load_engine(path: Path) -> Scorer:
    """Load a trained artifact folder as the inference engine, on the configured device,
    threads and precision (SURVEIL_DEVICE, SURVEIL_THREADS, SURVEIL_PRECISION)."""
    from models.engine import EngineConfig, InferenceEngine  # noqa: PLC0415 - imports torch

    ctx = click.get_current_context(silent=True)
    if ctx is None or not hasattr(ctx.obj, "settings"):
        return InferenceEngine.from_path(path, EngineConfig())
    settings = ctx.obj.settings()
    config = EngineConfig(
        device=settings.device, threads=settings.threads, precision=settings.precision
    )
    return InferenceEngine.from_path(path, config)


def _min_event_prob() -> float:
    from models.engine import EngineConfig  # noqa: PLC0415

    return EngineConfig().min_event_prob


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
    from models.taxonomy import NO_EVENT, SENTIMENT, TOPICS  # noqa: PLC0415

    names = TOPICS if event_labels is None else event_labels
    out = []
    for i, text in enumerate(texts):
        probs = sentiment[i]
        event: dict[str, Any] = {"label": NO_EVENT, "prob": 0.0, "probs": {}}
        if events.shape[1]:
            top = events[i].argsort()[::-1][:TOP_EVENTS]
            p_top = _prob(events[i, top[0]])
            confident = p_top >= min_event_prob
            event = {
                "label": names[int(top[0])] if confident else NO_EVENT,
                "prob": p_top if confident else 0.0,
                "probs": {names[int(j)]: _prob(events[i, j]) for j in top},
            }
        out.append(
            {
                "text": text,
                "sentiment": {
                    "label": SENTIMENT[int(probs.argmax())],
                    "probs": {s: _prob(p) for s, p in zip(SENTIMENT, probs, strict=True)},
                },
                "event": event,
                "model": version,
            }
        )
    return out


class _LexiconScorer:
    """The lexicon as a scorer: sentiment probabilities and an empty event head."""

    def __init__(self) -> None:
        from models.lexicon import LexiconClassifier  # noqa: PLC0415

        self._lexicon = LexiconClassifier()

    @property
    def version(self) -> str:
        return self._lexicon.version

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np  # noqa: PLC0415

        scores = self._lexicon.classify(texts)
        sentiment = np.array([s.probs for s in scores], dtype=np.float64).reshape(-1, 3)
        return sentiment, np.zeros((len(texts), 0))


# --- commands --------------------------------------------------------------------------


@click.command("eval")
@click.option(
    "--model",
    "model",
    envvar="SURVEIL_MODEL",
    show_envvar=True,
    required=True,
    help="Trained model artifact folder, or 'lexicon' (sentiment only, every row).",
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
def eval_command(
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
    from models.evaluate import run_eval  # noqa: PLC0415

    lexicon = model == "lexicon"
    if lexicon and task != "sentiment":
        _fail(ConfigError("--model lexicon scores sentiment only: it has no event head"))
    if not lexicon and not Path(model).exists():
        msg = f"{model!r} is neither 'lexicon' nor a folder"
        raise click.BadParameter(msg, param_hint="--model")

    def factory(path: Path) -> Scorer:
        return _LexiconScorer() if lexicon else load_engine(path)

    try:
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
    except SurveilError as exc:
        _fail(exc)
    click.echo(result.text)
    for warning in result.warnings:
        click.echo(warning, err=True)


@click.command("classify")
@click.option(
    "--model",
    "model",
    envvar="SURVEIL_MODEL",
    show_envvar=True,
    default="lexicon",
    show_default=True,
    help="'lexicon' or the path of a trained model artifact.",
)
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
def classify_command(model: str, file: str) -> None:
    """Label texts from FILE or stdin (lines, CSV with 'text', or JSONL); print JSONL."""
    name = None if file == "-" else file
    try:
        scorer: Scorer
        if model == "lexicon":
            scorer, threshold = _LexiconScorer(), 0.0
        else:
            scorer, threshold = load_engine(Path(model)), _min_event_prob()
        labels = getattr(scorer, "event_labels", None)
        with click.open_file(file, encoding="utf-8") as lines:
            for batch in _batches(read_texts(lines, name), BATCH):
                sentiment, events = scorer.probabilities(batch)
                for record in records(batch, sentiment, events, scorer.version, labels, threshold):
                    click.echo(json.dumps(record, ensure_ascii=False))
    except OSError as exc:
        _fail(DecodeError("unreadable", f"{name or 'stdin'}: {exc}"))
    except UnicodeDecodeError as exc:
        _fail(DecodeError("bad_encoding", f"{name or 'stdin'}: {exc}"))
    except SurveilError as exc:
        _fail(exc)
