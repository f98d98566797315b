"""Read sources.yaml into source specs, naming file, line and field of each mistake.

Every problem in a file is collected before anything is raised, so one run of
``surveil sources check`` lists them all, as ``surveil rules check`` does for rules files.
Values are read from the composed YAML nodes (`infra.yamlnodes`), which keeps each field's
line and takes strings as written.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from infra.errors import ConfigError, SourcesError
from infra.yamlnodes import Fields, NodeReader, hint, read_file
from ingest.base import Source
from ingest.text import is_symbol
from ingest.universe import canonical_variant

# kind -> (module, class): imported on use, so a parser's dependencies load only when needed.
KINDS: Mapping[str, tuple[str, str]] = {
    "rss": ("ingest.rss", "RssSource"),
    "edgar-atom": ("ingest.edgar", "EdgarAtomSource"),
    "edgar-index": ("ingest.edgar", "EdgarIndexSource"),
    "edgar-doc": ("ingest.edgar_doc", "EdgarDocSource"),
    "edgar-submissions": ("ingest.edgar_submissions", "EdgarSubmissionsSource"),
    "stocktwits": ("ingest.stocktwits", "StocktwitsSource"),
    "tweets": ("ingest.tweets", "TweetsSource"),
    "reddit-csv": ("ingest.reddit", "RedditCsvSource"),
}
_FORMS = frozenset(k for k in KINDS if k.startswith("edgar-"))
_COMMON = frozenset({"name", "kind", "url", "interval", "jitter", "tickers", "headers", "enabled"})
_FIELDS = _COMMON | {"forms"}
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class SourceSpec:
    """One entry of sources.yaml: what to fetch, how often, and how to parse it."""

    name: str
    kind: str
    url: str
    interval: float = 300.0
    jitter: float = 30.0
    tickers: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    forms: tuple[str, ...] = ()
    enabled: bool = True

    def build(self, body_max_chars: int = 20_000) -> Source:
        """Return the parser for this source's kind."""
        return make_source(
            self.kind,
            self.name,
            self.url,
            tickers=self.tickers,
            forms=self.forms,
            body_max_chars=body_max_chars,
        )


def make_source(
    kind: str,
    name: str,
    url: str,
    *,
    tickers: tuple[str, ...] = (),
    forms: tuple[str, ...] = (),
    body_max_chars: int = 20_000,
) -> Source:
    """Build the Source of a kind.

    Raises:
        ConfigError: the kind is unknown.
    """
    if kind not in KINDS:
        msg = f"kind {kind!r} is not one of {', '.join(KINDS)}"
        raise ConfigError(msg)
    module, name_ = KINDS[kind]
    cls = getattr(importlib.import_module(module), name_)
    options: dict[str, Any] = {"tickers": tickers, "body_max_chars": body_max_chars}
    if kind in _FORMS:
        options["forms"] = forms
    source: Source = cls(name, url, **options)
    return source


def load_specs(path: Path | str) -> list[SourceSpec]:
    """Return the source specs a YAML file lists under ``sources:``.

    Raises:
        SourcesError: the file is unreadable or has problems; ``.problems`` lists them all.
    """
    return read_file(path, SourcesError, _specs)


def check_file(path: Path | str) -> list[str]:
    """Return every problem of a sources file, each naming file, line and field (empty: valid)."""
    try:
        load_specs(path)
    except SourcesError as exc:
        return exc.problems
    return []


def _specs(r: NodeReader, root: yaml.Node | None) -> list[SourceSpec]:
    if root is None:
        r.problems.append(
            f"{r.file}:1: the file is empty; expected a mapping with a 'sources:' list"
        )
        return []
    top = r.fields(root, "", frozenset({"sources"}))
    if top is None:
        return []
    specs: list[SourceSpec] = []
    first: dict[str, int] = {}
    for here, item in top.need("sources", r.items, ": the file needs a 'sources:' list") or []:
        name = next((v for k, v in _pairs(item) if k == "name"), None)
        text = name.value.strip() if isinstance(name, yaml.ScalarNode) else ""
        if name is not None and text in first:
            line = first[text]
            r.fail(name, f"{here}.name", f"duplicate source name {text!r} (first on line {line})")
        elif name is not None and text:
            first[text] = name.start_mark.line + 1
        spec = _spec(r, item, here)
        if spec is not None and name is not None and first[spec.name] == name.start_mark.line + 1:
            specs.append(spec)
    return specs


def _pairs(node: yaml.Node) -> list[tuple[Any, yaml.Node]]:
    return [(k.value, v) for k, v in node.value] if isinstance(node, yaml.MappingNode) else []


def _spec(r: NodeReader, node: yaml.Node, where: str) -> SourceSpec | None:
    kind = next((str(v.value) for k, v in _pairs(node) if k == "kind" and v.value in KINDS), None)
    # forms filters EDGAR form types: on any other kind it would be silently ignored.
    allowed = _FIELDS if kind is None or kind in _FORMS else _COMMON
    f = r.fields(node, where, allowed, f" for a {kind} source" if kind else "")
    if f is None:
        return None
    interval = f.get("interval", r.duration, 300.0)
    values: dict[str, Any] = {
        "name": f.need("name", r.text),
        "kind": f.need("kind", partial(_kind, r)),
        "url": f.need("url", r.text),
        "interval": interval,
        "jitter": f.get("jitter", partial(_jitter, r), min((interval or 0) * 0.1, 60.0)),
        "tickers": f.get("tickers", partial(_tickers, r), ()),
        "headers": f.get("headers", partial(_headers, r), {}),
        "forms": f.get("forms", partial(_texts, r), ()),
        "enabled": f.get("enabled", r.flag, True),
    }
    if any(v is None for v in values.values()):
        return None
    return SourceSpec(**values)


def _jitter(r: NodeReader, node: yaml.Node, where: str) -> float | None:
    # An empty `jitter:` has always meant none.
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        return 0.0
    return r.duration(node, where, zero_ok=True)


def _kind(r: NodeReader, node: yaml.Node, where: str) -> str | None:
    kind = r.text(node, where)
    if kind is not None and kind not in KINDS:
        # "atom" is no close match for "edgar-atom" to difflib, but it is what was meant.
        near = [k for k in KINDS if kind.lower() in k]
        say = f"did you mean {near[0]!r}?" if len(near) == 1 else hint(kind, KINDS)
        r.fail(node, where, f"unknown kind {kind!r}; {say}")
        return None
    return kind


def _texts(r: NodeReader, node: yaml.Node, where: str) -> tuple[str, ...] | None:
    # `tickers:` or `forms:` left empty means none, as it always has.
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        r.fail(node, where, f"expected a list of strings, got {r.got(node)}")
        return None
    return r.texts(node, where)


def _tickers(r: NodeReader, node: yaml.Node, where: str) -> tuple[str, ...] | None:
    values = _texts(r, node, where)
    if not values:
        return values
    symbols = tuple(canonical_variant(v) for v in values)
    bad = [
        (here, item, value)
        for (here, item), value in zip(r.items(node, where), symbols, strict=False)
        if not is_symbol(value)
    ]
    for here, item, value in bad:
        r.fail(
            item, here, f"expected a ticker symbol (1-5 letters, a class like BRK.B), got {value!r}"
        )
    return None if bad else symbols


def _headers(r: NodeReader, node: yaml.Node, where: str) -> dict[str, str] | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        return {}
    keys = (
        frozenset(str(k.value) for k, _ in node.value)
        if isinstance(node, yaml.MappingNode)
        else frozenset()
    )
    f: Fields | None = r.fields(node, where, keys)
    if f is None:
        return None
    values = {name: f.get(name, r.text) for name in f.values}
    if any(v is None for v in values.values()):
        return None
    return {k: v for k, v in values.items() if v is not None}


def load_sources(path: Path, *, body_max_chars: int = 20_000) -> list[Source]:
    """Return the parsers of the enabled sources a YAML file lists."""
    return [spec.build(body_max_chars) for spec in load_specs(path) if spec.enabled]
