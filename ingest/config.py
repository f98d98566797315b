"""Read sources.yaml into Source objects, with errors that name the entry at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.errors import ConfigError
from ingest.rss import RssSource

KINDS = ("rss",)


def load_sources(path: Path, *, body_max_chars: int = 20_000) -> list[RssSource]:
    """Return the sources a YAML file lists under ``sources:``."""
    try:
        data: Any = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        msg = f"{path}: expected a top-level 'sources:' list"
        raise ConfigError(msg)
    sources = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}: sources[{index}]"
        if not isinstance(entry, dict):
            msg = f"{where}: expected a mapping"
            raise ConfigError(msg)
        for key in ("name", "kind", "url"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                msg = f"{where}: missing or empty field '{key}'"
                raise ConfigError(msg)
        if entry["kind"] not in KINDS:
            msg = f"{where}: kind {entry['kind']!r} is not one of {', '.join(KINDS)}"
            raise ConfigError(msg)
        if entry["name"] in names:
            msg = f"{where}: duplicate source name {entry['name']!r}"
            raise ConfigError(msg)
        names.add(entry["name"])
        tickers = entry.get("tickers") or []
        if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
            msg = f"{where}: field 'tickers' must be a list of symbols"
            raise ConfigError(msg)
        sources.append(
            RssSource(entry["name"], entry["url"], tickers=tickers, body_max_chars=body_max_chars)
        )
    return sources
