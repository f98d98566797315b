"""Read an alert rules file (YAML) into typed rules, naming file, line and field of each mistake.

Every problem in a file is collected before anything is raised, so one run of
``surveil rules check FILE`` lists them all. Strings (tickers, times, 8-K items) are read
from the raw YAML text, because YAML 1.1 would turn ``ON`` into true, ``16:00`` into 960 and
``1.10`` into 1.1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import yaml

from alerts.base import CHANNELS
from alerts.conditions import InhibitRule, Kind, Matcher, MuteWindow, RouteConfig, Severity
from alerts.mute import read_mutes
from infra.errors import RulesError
from infra.yamlnodes import Fields, NodeReader, hint, read_file
from models.taxonomy import EVENT_TYPES, NO_EVENT, SEC_ITEM_EVENTS

KINDS: tuple[Kind, ...] = ("threshold", "shock", "negative_spike", "event")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

_TOP = frozenset({"watchlists", "route", "inhibit", "mute", "rules"})
_ROUTE = frozenset({"group_wait", "group_interval", "repeat_interval", "send_resolved"})
_INHIBIT = frozenset({"source", "target", "duration"})
_MATCHER = frozenset({"rules", "kinds"})
_COMMON = frozenset({"name", "kind", "severity", "scope", "window", "min_docs", "channels"})
_KIND_FIELDS: Mapping[str, frozenset[str]] = {
    "threshold": frozenset({"threshold", "hysteresis"}),
    "shock": frozenset({"zscore", "baseline", "min_baseline", "hysteresis"}),
    "negative_spike": frozenset({"factor", "baseline", "min_baseline"}),
    "event": frozenset({"event", "item", "probability"}),
}
_RULE_FIELDS = _COMMON.union(*_KIND_FIELDS.values())
_EVENTS = tuple(e for e in EVENT_TYPES if e != NO_EVENT)


@dataclass(frozen=True, kw_only=True)
class RuleSpec:
    """What every rule has: a name, a severity, a scope, a window and where to send it.

    Attributes:
        tickers: the tickers the rule covers; None covers every ticker.
        watchlist: the watchlist the tickers came from, if any.
        channels: the notifier channels to use; empty means all.
        line: the rule's line in its file.
    """

    kind: ClassVar[Kind]
    name: str
    severity: Severity = "warning"
    tickers: frozenset[str] | None = None
    watchlist: str | None = None
    window_s: float = 3600.0
    min_docs: int = 3
    channels: tuple[str, ...] = ()
    line: int = 0

    def covers(self, ticker: str) -> bool:
        """Whether the rule applies to a ticker."""
        return self.tickers is None or ticker in self.tickers


@dataclass(frozen=True, kw_only=True)
class ThresholdSpec(RuleSpec):
    """Active while the window's mean score is at or below ``threshold`` (over ``min_docs``);
    resolves above ``threshold + hysteresis``."""

    kind: ClassVar[Kind] = "threshold"
    threshold: float
    hysteresis: float = 0.05


@dataclass(frozen=True, kw_only=True)
class ShockSpec(RuleSpec):
    """Active while the window mean's z-score against the ticker's trailing baseline is at or
    below ``zscore`` (a negative number); resolves above ``zscore + hysteresis``."""

    kind: ClassVar[Kind] = "shock"
    zscore: float
    baseline_s: float = 30 * 86400.0
    min_baseline: int = 20
    hysteresis: float = 0.5


@dataclass(frozen=True, kw_only=True)
class NegativeSpikeSpec(RuleSpec):
    """Active while the window holds at least ``min_docs`` negatives and ``factor`` times the
    trailing average number of negatives per window over ``baseline_s``."""

    kind: ClassVar[Kind] = "negative_spike"
    factor: float
    baseline_s: float = 30 * 86400.0
    min_baseline: int = 20


@dataclass(frozen=True, kw_only=True)
class EventSpec(RuleSpec):
    """Active while the window holds ``min_docs`` documents of ``event`` with an event
    probability of at least ``probability``; ``item`` is the 8-K item it was named by."""

    kind: ClassVar[Kind] = "event"
    event: str
    probability: float = 0.5
    item: str | None = None
    min_docs: int = 1


Rule: TypeAlias = ThresholdSpec | ShockSpec | NegativeSpikeSpec | EventSpec


@dataclass(frozen=True)
class RuleSet:
    """A loaded rules file: the rules, the watchlists they use, and the router's settings."""

    rules: tuple[Rule, ...] = ()
    watchlists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    route: RouteConfig = field(default_factory=RouteConfig)
    inhibit: tuple[InhibitRule, ...] = ()
    mute: tuple[MuteWindow, ...] = ()
    path: str = ""

    def rule(self, name: str) -> Rule:
        """Return the rule of that name.

        Raises:
            KeyError: no rule has that name.
        """
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


def load_ruleset(path: Path | str) -> RuleSet:
    """Read and validate a rules file.

    Raises:
        RulesError: the file is unreadable or has problems; ``.problems`` lists them all.
    """
    return read_file(path, RulesError, _ruleset)


def check_file(path: Path | str) -> list[str]:
    """Return every problem of a rules file, each naming file, line and field (empty: valid)."""
    try:
        load_ruleset(path)
    except RulesError as exc:
        return exc.problems
    return []


def _ruleset(r: NodeReader, root: yaml.Node | None) -> RuleSet | None:
    if root is None:
        r.problems.append(f"{r.file}:1: the file is empty; expected a mapping with a 'rules:' list")
        return None
    top = r.fields(root, "", _TOP)
    if top is None:
        return None
    watchlists = top.get("watchlists", partial(_watchlists, r)) or {}
    route = top.get("route", partial(_route, r)) or RouteConfig()
    mute = top.get("mute", partial(read_mutes, r)) or ()
    rules = top.need("rules", partial(_rules, r, watchlists), ": the file needs a 'rules:' list")
    listed = top.values.get("rules")
    items = listed.value if isinstance(listed, yaml.SequenceNode) else []
    names = {str(v.value) for item in items for k, v in _pairs(item) if k == "name"}
    inhibit = top.get("inhibit", partial(_inhibits, r, names)) or ()
    return RuleSet(rules or (), watchlists, route, inhibit, mute, r.file)


def _watchlists(r: NodeReader, node: yaml.Node, where: str) -> dict[str, tuple[str, ...]]:
    keys = [str(k) for k, _ in _pairs(node)]
    f = r.fields(node, where, frozenset(keys))
    lists = {name: f.get(name, r.tickers, None) for name in f.values} if f else {}
    return {name: tickers for name, tickers in lists.items() if tickers}


def _route(r: NodeReader, node: yaml.Node, where: str) -> RouteConfig:
    f = r.fields(node, where, _ROUTE)
    if f is None:
        return RouteConfig()
    values: dict[str, Any] = {
        "group_wait_s": f.get("group_wait", partial(r.duration, zero_ok=True), None),
        "group_interval_s": f.get("group_interval", partial(r.duration, zero_ok=True), None),
        "repeat_interval_s": f.get("repeat_interval", r.duration, None),
        "send_resolved": f.get("send_resolved", r.flag, None),
    }
    return RouteConfig(**{k: v for k, v in values.items() if v is not None})


def _inhibits(
    r: NodeReader, names: set[str], node: yaml.Node, where: str
) -> tuple[InhibitRule, ...]:
    out = []
    for here, item in r.items(node, where):
        f = r.fields(item, here, _INHIBIT)
        if f is None:
            continue
        source = f.need("source", partial(_matcher, r, names))
        target = f.need("target", partial(_matcher, r, names))
        duration = f.get("duration", r.duration, 3600.0)
        if source is not None and target is not None and duration is not None:
            out.append(InhibitRule(source, target, duration))
    return tuple(out)


def _matcher(r: NodeReader, names: set[str], node: yaml.Node, where: str) -> Matcher | None:
    f = r.fields(node, where, _MATCHER)
    if f is not None and not f.values:
        r.fail(node, where, "name rules or kinds (an empty matcher would match every alert)")
    if f is None or not f.values:
        return None
    rules: tuple[str, ...] = f.get("rules", r.texts) or ()
    for here, item in r.items(f.values["rules"], f.at("rules")) if rules else []:
        if item.value not in names:
            r.fail(item, here, f"no rule is named {item.value!r}; {hint(item.value, names)}")
    kinds = f.get("kinds", partial(_kinds, r)) or ()
    return Matcher(rules, kinds)


def _kinds(r: NodeReader, node: yaml.Node, where: str) -> tuple[str, ...]:
    kinds = [r.choice(item, here, KINDS) for here, item in r.items(node, where)]
    return tuple(k for k in kinds if k)


def _pairs(node: yaml.Node) -> list[tuple[Any, yaml.Node]]:
    return [(k.value, v) for k, v in node.value] if isinstance(node, yaml.MappingNode) else []


def _rules(
    r: NodeReader, watchlists: Mapping[str, tuple[str, ...]], node: yaml.Node, where: str
) -> tuple[Rule, ...]:
    out: list[Rule] = []
    first: dict[str, int] = {}
    for here, item in r.items(node, where):
        name = next((v.value for k, v in _pairs(item) if k == "name"), None)
        if isinstance(name, str) and name in first:
            line = first[name]
            r.fail(item, f"{here}.name", f"duplicate rule name {name!r} (first on line {line})")
        elif isinstance(name, str):
            first[name] = item.start_mark.line + 1
        rule = _rule(r, item, here, watchlists)
        if rule is not None and first.get(rule.name) == rule.line:
            out.append(rule)
    return tuple(out)


def _rule(
    r: NodeReader, node: yaml.Node, where: str, watchlists: Mapping[str, tuple[str, ...]]
) -> Rule | None:
    kind = next((str(v.value) for k, v in _pairs(node) if k == "kind" and v.value in KINDS), None)
    allowed = _COMMON | _KIND_FIELDS[kind] if kind else _RULE_FIELDS
    f = r.fields(node, where, allowed, f" for a {kind} rule" if kind else "")
    if f is None:
        return None
    values: dict[str, Any] = {
        "name": f.need("name", r.text),
        "line": node.start_mark.line + 1,
        "severity": f.get("severity", partial(r.choice, options=SEVERITIES), "warning"),
        "window_s": f.get("window", r.duration, 3600.0),
        "min_docs": f.get("min_docs", r.count, 1 if kind == "event" else 3),
        "channels": f.get("channels", partial(_channels, r), ()),
    }
    f.need("kind", partial(r.choice, options=KINDS))
    scope = f.get("scope", partial(_scope, r, watchlists))
    values["tickers"], values["watchlist"] = scope or (None, None)
    values.update(_specific(r, kind, f))
    if kind is None or any(v is None for k, v in values.items() if k not in _OPTIONAL):
        return None
    return _CLASSES[kind](**values)


def _channels(r: NodeReader, node: yaml.Node, where: str) -> tuple[str, ...] | None:
    names = r.texts(node, where)
    if names is None:
        return None
    unknown = [
        (item, here, name)
        for (here, item), name in zip(r.items(node, where), names, strict=True)
        if name not in CHANNELS
    ]
    for item, here, name in unknown:
        r.fail(item, here, f"unknown channel {name!r}; {hint(name, CHANNELS)}")
    return None if unknown else names


def _scope(
    r: NodeReader, watchlists: Mapping[str, tuple[str, ...]], node: yaml.Node, where: str
) -> tuple[frozenset[str] | None, str | None]:
    if isinstance(node, yaml.ScalarNode) and node.value == "all":
        return None, None
    if not isinstance(node, yaml.MappingNode):
        expect = "all, {tickers: [...]} or {watchlist: NAME}"
        r.fail(node, where, f"expected {expect}, got {r.got(node)}")
        return None, None
    f = r.fields(node, where, frozenset({"tickers", "watchlist"}))
    if f is None:
        return None, None
    if len(f.values) != 1:
        r.fail(node, where, "give exactly one of tickers or watchlist")
        return None, None
    tickers = f.get("tickers", r.tickers, None)
    name = f.get("watchlist", r.text, None)
    if name is not None and name not in watchlists:
        known = ", ".join(watchlists) or "none"
        f.fail("watchlist", f"unknown watchlist {name!r} (defined: {known})")
    elif name is not None:
        tickers = watchlists[name]
    return (frozenset(tickers) if tickers else None), name


def _specific(r: NodeReader, kind: str | None, f: Fields) -> dict[str, Any]:
    def num(ok: Callable[[float], bool], expect: str) -> Callable[[yaml.Node, str], float | None]:
        return partial(r.number, ok=ok, expect=expect)

    out: dict[str, Any] = {}
    if kind == "threshold":
        out["threshold"] = f.need("threshold", num(lambda v: -1 <= v <= 1, _BETWEEN))
        out["hysteresis"] = f.get("hysteresis", num(lambda v: 0 <= v < 2, _HYST), 0.05)
    elif kind == "shock":
        out["zscore"] = f.need("zscore", num(lambda v: v < 0, "a negative number such as -3"))
        out["hysteresis"] = f.get("hysteresis", num(lambda v: v >= 0, "a number >= 0"), 0.5)
    elif kind == "negative_spike":
        out["factor"] = f.need("factor", num(lambda v: v > 1, "a number greater than 1"))
    elif kind == "event":
        out["probability"] = f.get("probability", num(lambda v: 0 < v <= 1, _PROB), 0.5)
        out.update(_event(r, f))
    if kind in ("shock", "negative_spike"):
        out["baseline_s"] = f.get("baseline", r.duration, 30 * 86400.0)
        out["min_baseline"] = f.get("min_baseline", r.count, 20)
    return out


def _event(r: NodeReader, f: Fields) -> dict[str, Any]:
    if "event" in f and "item" in f:
        r.fail(f.node, f.where, "give either event or item, not both")
        return {"event": None}
    if "item" in f:
        item = f.get("item", r.text, None)
        if item is not None and item not in SEC_ITEM_EVENTS:
            known = ", ".join(SEC_ITEM_EVENTS)
            f.fail("item", f"expected an 8-K item that names an event ({known}), got {item!r}")
        return {"event": SEC_ITEM_EVENTS.get(item or ""), "item": item}
    event = f.need("event", r.text, ": give event (an event type) or item (an 8-K item)")
    if event is not None and event not in _EVENTS:
        f.fail("event", f"unknown event type {event!r}; {hint(event, _EVENTS)}")
        return {"event": None}
    return {"event": event}


_BETWEEN = "a number between -1 and 1"
_PROB = "a probability in (0, 1]"
_HYST = "a number from 0 to 2"
_OPTIONAL = frozenset({"tickers", "watchlist", "item"})
_CLASSES: Mapping[str, type[Rule]] = {
    "threshold": ThresholdSpec,
    "shock": ShockSpec,
    "negative_spike": NegativeSpikeSpec,
    "event": EventSpec,
}
