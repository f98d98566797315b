"""Read sources.yaml into source specs, with errors that name the file, entry and field."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.errors import ConfigError
from infra.yamlnodes import seconds
from ingest.base import Source

# kind -> (module, class): imported on use, so a parser's dependencies load only when needed.
KINDS: Mapping[str, tuple[str, str]] = {
    "rss": ("ingest.rss", "RssSource"),
    "edgar-atom": ("ingest.edgar", "EdgarAtomSource"),
    "edgar-index": ("ingest.edgar", "EdgarIndexSource"),
    "edgar-doc": ("ingest.edgar", "EdgarDocSource"),
    "edgar-submissions": ("ingest.edgar", "EdgarSubmissionsSource"),
    "stocktwits": ("ingest.stocktwits", "StocktwitsSource"),
    "tweets": ("ingest.tweets", "TweetsSource"),
    "reddit-csv": ("ingest.reddit", "RedditCsvSource"),
}
_FORMS = frozenset(k for k in KINDS if k.startswith("edgar-"))
_FIELDS = frozenset(
    {"name", "kind", "url", "interval", "jitter", "tickers", "headers", "forms", "enabled"}
)


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


def load_specs(path: Path) -> list[SourceSpec]:
    """Return the source specs a YAML file lists under ``sources:``.

    Raises:
        ConfigError: the file is unreadable or an entry is invalid (the message names the
            file, the line and the field).
    """
    try:
        text = path.read_text("utf-8")
        data: Any = yaml.safe_load(text)
        nodes = yaml.compose(text)
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        msg = f"{path}: expected a top-level 'sources:' list"
        raise ConfigError(msg)
    lines = _entry_lines(nodes)
    specs: list[SourceSpec] = []
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else 0
        spec = _spec(entry, f"{path}:{line}: sources[{index}]")
        if any(s.name == spec.name for s in specs):
            msg = f"{path}:{line}: sources[{index}]: duplicate source name {spec.name!r}"
            raise ConfigError(msg)
        specs.append(spec)
    return specs


def _entry_lines(root: yaml.Node | None) -> list[int]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "sources" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _spec(entry: Any, where: str) -> SourceSpec:
    if not isinstance(entry, dict):
        msg = f"{where}: expected a mapping"
        raise ConfigError(msg)
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        msg = f"{where}: unknown field(s) {', '.join(map(str, unknown))}"
        raise ConfigError(msg)
    for key in ("name", "kind", "url"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            msg = f"{where}: missing or empty field '{key}'"
            raise ConfigError(msg)
    if entry["kind"] not in KINDS:
        msg = f"{where}: field 'kind': {entry['kind']!r} is not one of {', '.join(KINDS)}"
        raise ConfigError(msg)
    interval = seconds(entry.get("interval", 300), f"{where}: field 'interval'")
    jitter = (
        seconds(entry["jitter"], f"{where}: field 'jitter'")
        if entry.get("jitter") not in (None, 0, "0")
        else (0.0 if "jitter" in entry else min(interval * 0.1, 60.0))
    )
    return SourceSpec(
        name=entry["name"],
        kind=entry["kind"],
        url=entry["url"],
        interval=interval,
        jitter=jitter,
        tickers=_strings(entry, "tickers", where),
        headers=_headers(entry, where),
        forms=_strings(entry, "forms", where),
        enabled=_flag(entry, "enabled", where),
    )


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        msg = f"{where}: field '{key}' must be a list of strings"
        raise ConfigError(msg)
    return tuple(value)


def _headers(entry: dict[str, Any], where: str) -> dict[str, str]:
    value = entry.get("headers") or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        msg = f"{where}: field 'headers' must map header names to strings"
        raise ConfigError(msg)
    return dict(value)


def _flag(entry: dict[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, True)
    if not isinstance(value, bool):
        msg = f"{where}: field '{key}' must be true or false"
        raise ConfigError(msg)
    return value


def load_sources(path: Path, *, body_max_chars: int = 20_000) -> list[Source]:
    """Return the parsers of the enabled sources a YAML file lists."""
    return [spec.build(body_max_chars) for spec in load_specs(path) if spec.enabled]
