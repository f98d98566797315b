"""Read composed YAML nodes into typed values, collecting problems with file, line and field.

Reading nodes rather than loaded data keeps each value's line for the message, and lets
strings be taken as written: YAML 1.1 would turn ``ON`` into true, ``16:00`` into 960 and
``1.10`` into 1.1.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from infra.errors import ConfigError, ProblemsError

_TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}$")
_NULL = "tag:yaml.org,2002:null"
_T = TypeVar("_T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


_E = TypeVar("_E", bound=ProblemsError)


def compose_file(path: Path | str, error: type[_E]) -> yaml.Node | None:
    """Return a YAML file's node tree (None when it is empty).

    Raises:
        error: the file is unreadable or not YAML, with the line of the YAML error.
    """
    file = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error([f"{file}: cannot read the file: {exc}"]) from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise error([f"{file}:{line}: invalid YAML: {problem}"]) from exc


def seconds(value: Any, where: str) -> float:
    """Parse a duration: a number of seconds, or a string like ``90s``, ``5m``, ``1h``.

    Raises:
        ConfigError: the value is no positive duration.
    """
    valid = isinstance(value, int | float | str) and not isinstance(value, bool)
    match = _DURATION.match(str(value)) if valid else None
    if match is None or float(match.group(1)) * _UNIT[match.group(2)] <= 0:
        msg = f"{where}: expected a positive duration like 300, '90s', '5m' or '1h', got {value!r}"
        raise ConfigError(msg)
    return float(match.group(1)) * _UNIT[match.group(2)]


class NodeReader:
    """Walk composed YAML nodes, noting each problem with file, line and field.

    Each reader returns the value or None after noting a problem, so a caller reads on and
    a file's problems come out together (`sorted`).
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []
        self._loader = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, where: str, msg: str) -> None:
        at = f"{self.file}:{node.start_mark.line + 1}"
        self.problems.append(f"{at}: {where}: {msg}" if where else f"{at}: {msg}")

    def sorted(self) -> list[str]:
        """Return the problems in line order."""
        prefix = len(self.file) + 1
        return sorted(self.problems, key=lambda p: int(p[prefix:].partition(":")[0] or 0))

    def got(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
        return "nothing" if node.tag == _NULL else repr(self._loader.construct_object(node))

    def fields(
        self, node: yaml.Node, where: str, allowed: frozenset[str], note: str = ""
    ) -> Fields | None:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, where, f"expected a mapping, got {self.got(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            here = f"{where}.{key}" if where else key
            if key in out:
                self.fail(key_node, here, "given twice")
            elif key not in allowed:
                self.fail(key_node, here, f"unknown field{note}; {hint(key, allowed)}")
            else:
                out[key] = value
        return Fields(self, node, where, out)

    def text(self, node: yaml.Node, where: str) -> str | None:
        value = node.value.strip() if isinstance(node, yaml.ScalarNode) else ""
        if not value or node.tag == _NULL:
            self.fail(node, where, f"expected a non-empty string, got {self.got(node)}")
            return None
        return value

    def choice(self, node: yaml.Node, where: str, options: tuple[str, ...]) -> str | None:
        value = self.text(node, where)
        if value is not None and value not in options:
            self.fail(node, where, f"expected one of {', '.join(options)}, got {value!r}")
            return None
        return value

    def number(
        self, node: yaml.Node, where: str, ok: Callable[[float], bool], expect: str
    ) -> float | None:
        value: Any = None
        if isinstance(node, yaml.ScalarNode):
            value = self._loader.construct_object(node)
            if isinstance(value, str) and node.style is None:
                # Plain scalars such as -.3 or 1e-3 are numbers to a reader, strings to YAML 1.1.
                try:
                    value = float(value)
                except ValueError:
                    pass
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not ok(float(number)):
            self.fail(node, where, f"expected {expect}, got {self.got(node)}")
            return None
        return float(number)

    def count(self, node: yaml.Node, where: str) -> int | None:
        value = self.number(node, where, lambda v: v >= 1 and v == int(v), "a whole number >= 1")
        return None if value is None else int(value)

    def flag(self, node: yaml.Node, where: str) -> bool | None:
        value = self._loader.construct_object(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            self.fail(node, where, f"expected true or false, got {self.got(node)}")
            return None
        return value

    def duration(self, node: yaml.Node, where: str, *, zero_ok: bool = False) -> float | None:
        value = self._loader.construct_object(node) if isinstance(node, yaml.ScalarNode) else node
        if zero_ok and not isinstance(value, bool) and value in (0, "0", "0s"):
            return 0.0
        try:
            return seconds(value, f"{self.file}:{node.start_mark.line + 1}: {where}")
        except ConfigError as exc:
            self.problems.append(str(exc))
            return None

    def items(self, node: yaml.Node, where: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, where, f"expected a list, got {self.got(node)}")
            return []
        return [(f"{where}[{i}]", item) for i, item in enumerate(node.value)]

    def texts(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        values = [self.text(item, here) for here, item in self.items(node, where)]
        return None if None in values else tuple(v for v in values if v is not None)

    def tickers(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        out: list[str] = []
        entries = self.items(node, where)
        for here, item in entries:
            value = self.text(item, here)
            if value is not None and not _TICKER.match(value):
                self.fail(item, here, f"expected a ticker symbol, got {value!r}")
            elif value is not None:
                out.append(value.upper())
        if not entries:
            self.fail(node, where, "expected a non-empty list of tickers")
        return tuple(dict.fromkeys(out)) if out else None


@dataclass
class Fields:
    """A mapping's fields by name, and where it stands, for terse optional and required reads."""

    r: NodeReader
    node: yaml.Node
    where: str
    values: dict[str, yaml.Node]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, msg: str) -> None:
        self.r.fail(self.values.get(key, self.node), self.at(key), msg)

    def get(
        self, key: str, read: Callable[[yaml.Node, str], _T | None], default: _T | None = None
    ) -> _T | None:
        return read(self.values[key], self.at(key)) if key in self.values else default

    def need(
        self, key: str, read: Callable[[yaml.Node, str], _T | None], what: str = ""
    ) -> _T | None:
        if key not in self.values:
            self.r.fail(self.node, self.at(key), f"missing{what}")
            return None
        return read(self.values[key], self.at(key))


def hint(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    listed = ", ".join(sorted(allowed)) or "none"
    return f"did you mean {close[0]!r}?" if close else f"expected one of {listed}"


def read_file(
    path: Path | str,
    error: type[_E],
    parse: Callable[[NodeReader, yaml.Node | None], _T | None],
) -> _T:
    """Read a YAML file with ``parse``, which notes each problem on the reader it is given.

    Raises:
        error: the file is unreadable, not YAML, or has problems (None from ``parse`` is one);
            its one argument is the list of every problem, in line order.
    """
    root = compose_file(path, error)
    reader = NodeReader(str(path))
    value = parse(reader, root)
    if reader.problems or value is None:
        raise error(reader.sorted())
    return value
