"""A rules file (TOML) -> a ``RuleSet``, or a ``RulesError`` listing every problem at file:line.

The file is an ordered list of ``[[rule]]`` tables (name, on, when, stop,
description) each with ``[[rule.action]]`` tables (type, max_attempts, and the
action's own keys). Nothing is evaluated: conditions and templates are data,
checked against the fields the rule's events carry, and every action's params
are validated by the action itself (``Action.prepare``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError
from rules.actions.registry import ActionRegistry
from rules.base import DEFAULT_MAX_ATTEMPTS, Problem, RulesError
from rules.conditions import AllOf, Condition, ConditionReader
from rules.fields import EVENTS, expand_event_patterns, fields_of
from rules.params import Params
from rules.sourcemap import SourceMap

RULE_KEYS = ("name", "description", "on", "when", "stop", "action")
COMMON_ACTION_KEYS = ("type", "max_attempts")
_TOML_LINE = re.compile(r"at line (\d+)")


@dataclass(frozen=True)
class ActionSpec:
    """One action of a rule, validated; ``params`` is what each outcome row stores."""

    type: str
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Rule:
    """A rule: which events, which conditions, which actions, and whether matching stops."""

    name: str
    on: tuple[str, ...]
    when: Condition
    actions: tuple[ActionSpec, ...]
    stop: bool = False
    line: int = 0
    description: str = ""


@dataclass(frozen=True)
class RuleSet:
    """The ordered rules of one file."""

    path: Path
    rules: tuple[Rule, ...]


def load_rules(path: Path, registry: ActionRegistry) -> RuleSet:
    """Read and validate ``path``; raise RulesError naming file:line for every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: the rules file cannot be read ({exc.strerror}); check "
                          "[rules] file in ackmail.toml") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the rules file is not UTF-8 text; save it as UTF-8") from None
    return parse_rules(text, path, registry)


def parse_rules(text: str, path: Path, registry: ActionRegistry) -> RuleSet:
    """Validate rules given as text (``path`` is used in messages and for relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        line = int(match.group(1)) if match else text.count("\n") + 1
        raise RulesError([Problem(path, line, f"not valid TOML ({exc}); fix the syntax")]) from None
    reader = _Reader(path, SourceMap(text), registry)
    rules = reader.read(data)
    if reader.problems:
        raise RulesError(sorted(reader.problems, key=lambda p: p.line))
    return RuleSet(path, rules)


class _Reader:
    """Walks the parsed TOML, collecting every problem with its line."""

    def __init__(self, path: Path, source: SourceMap, registry: ActionRegistry) -> None:
        self.path = path
        self.source = source
        self.registry = registry
        self.problems: list[Problem] = []

    def fail(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def read(self, data: dict[str, Any]) -> tuple[Rule, ...]:
        for key in data:
            if key != "rule":
                line = self.source.find_key_after(1, key) or 1
                self.fail(line, f"top-level key '{key}' is not known; a rules file holds only "
                                "[[rule]] tables")
        items = data.get("rule", [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            self.fail(1, "'rule' must be written as [[rule]] tables")
            return ()
        rules = tuple(self._rule(n, item) for n, item in enumerate(items))
        self._unique_names(rules)
        return rules

    def _unique_names(self, rules: tuple[Rule, ...]) -> None:
        seen: dict[str, int] = {}
        for rule in rules:
            if rule.name in seen:
                self.fail(rule.line, f"rule name '{rule.name}' is already used by the rule at "
                                     f"line {seen[rule.name]}; give each rule its own name")
            seen.setdefault(rule.name, rule.line)

    def _rule(self, n: int, data: dict[str, Any]) -> Rule:
        line = self.source.rule_line(n)
        for key in data:
            if key not in RULE_KEYS:
                self.fail(self.source.key_line(n, key),
                          f"rule key '{key}' is not known; use {', '.join(RULE_KEYS)}")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail(line, "the rule has no name; add name = \"...\" (names appear in the "
                            "outbox and the logs)")
            name = f"#{n + 1}"
        on = self._on(n, data.get("on"))
        # With no valid event types, judge fields against all events: one error, not a cascade.
        fields = fields_of(on or EVENTS)
        when = self._when(n, data.get("when", {}), fields)
        stop = data.get("stop", False)
        if not isinstance(stop, bool):
            self.fail(self.source.key_line(n, "stop"), "stop must be true or false")
        written = data.get("action", [])
        actions = self._actions(n, written, fields)
        # A rule whose actions were all refused has had its error; "no action" would be false.
        if not written and stop is not True:
            self.fail(line, f"rule '{name}' has no [[rule.action]]; add one, or set stop = true "
                            "to make it a rule that only stops later rules")
        description = data.get("description", "")
        return Rule(name, on, when, actions, stop is True, line, str(description))

    def _on(self, n: int, value: Any) -> tuple[str, ...]:
        line = self.source.key_line(n, "on")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.fail(line, "on must list event types, e.g. on = [\"request.approved\"]; known: "
                            + ", ".join(EVENTS))
            return ()
        types: list[str] = []
        for pattern in value:
            matched = expand_event_patterns(pattern)
            if not matched:
                self.fail(line, f"event type '{pattern}' is not known; known: {', '.join(EVENTS)}")
            types += [t for t in matched if t not in types]
        return tuple(types)

    def _when(self, n: int, value: Any, fields: frozenset[str]) -> Condition:
        reader = ConditionReader(fields)
        condition = reader.read(value)
        when_line = self.source.key_line(n, "when")
        _, end = self.source.rule_span(n)
        for hint, message in reader.problems:
            line = self.source.find_key_after(when_line, hint, end) or when_line
            self.fail(line, message)
        return condition if not reader.problems else AllOf(())

    def _actions(self, n: int, value: Any, fields: frozenset[str]) -> tuple[ActionSpec, ...]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(self.source.key_line(n, "action"),
                      "actions must be written as [[rule.action]] tables")
            return ()
        return tuple(
            spec for k, item in enumerate(value)
            if (spec := self._action(n, k, item, fields)) is not None
        )

    def _action(self, n: int, k: int, data: dict[str, Any],
                fields: frozenset[str]) -> ActionSpec | None:
        line = self.source.action_line(n, k)
        kind = data.get("type")
        names = list(self.registry.names())
        if not isinstance(kind, str):
            where = self.source.key_line(n, "type", k) if "type" in data else line
            self.fail(where, f"the action needs type = one of {', '.join(names)}")
            return None
        action = self.registry.get(kind)
        if action is None:
            hint = difflib.get_close_matches(kind, names, n=1)
            guess = f" (did you mean '{hint[0]}'?)" if hint else ""
            self.fail(self.source.key_line(n, "type", k),
                      f"action type '{kind}' is not known{guess}; use one of "
                      f"{', '.join(names)} (or install the plugin that adds it)")
            return None
        own = {key: v for key, v in data.items() if key not in COMMON_ACTION_KEYS}
        params = Params(own, fields=fields, base_dir=self.path.parent)
        try:
            prepared = action.prepare(params)
        except Exception as exc:  # a plugin's bug must still end in file:line, not a traceback
            params.problem("type", f"the {kind} action failed to check its settings "
                                   f"({type(exc).__name__}: {exc}); report it to its author")
            prepared = {}
        else:
            params.finish()
        attempts = data.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
            params.problem("max_attempts", f"max_attempts must be a whole number from 1 to 100, "
                                           f"not {attempts!r}")
        for key, message in params.problems:
            self.fail(self.source.key_line(n, key, k), f"{kind} action: {message}")
        return ActionSpec(kind, {**prepared, "max_attempts": attempts}, line)
