"""``when`` conditions: field matchers and ``all``/``any``/``not``, read from TOML data.

A condition is data, never code: a tree of frozen dataclasses whose leaves test
one payload field with one operator from the ``OPERATORS`` table. Every check
returns a ``Verdict`` with a sentence, so ``rules test`` and the engine's log can
say why a rule fired or did not.

TOML shapes accepted for a field (``ref`` is short for ``request.ref``)::

    when = { ref = "CR-*" }                        # a glob (has * ? or [)
    when = { "response.intent" = "unknown" }       # an exact value
    when = { ref = { regex = "^CR-[0-9]+$" } }     # operators: eq glob regex in gt ge lt le exists
    when = { any = [ { ref = "CR-*" }, { ref = "INC-*" } ], not = { intent = "reject" } }
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

from rules.fields import canonical, lookup
from rules.templates import unknown_field

GLOB_CHARACTERS = frozenset("*?[")
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True)
class Verdict:
    """Whether a condition holds, and the evidence in one sentence."""

    ok: bool
    reason: str


class Condition(Protocol):
    """Anything that can judge an event payload."""

    def check(self, payload: Mapping[str, Any]) -> Verdict:
        """Whether the payload satisfies this condition, and why."""
        ...


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(test: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def compare(value: Any, operand: Any) -> bool:
        return _is_number(value) and test(value, operand)

    return compare


def _need_scalar(operand: Any) -> str:
    ok = isinstance(operand, str | int | float | bool)
    return "" if ok else "needs a string, number or true/false"


def _need_string(operand: Any) -> str:
    return "" if isinstance(operand, str) else "needs a string"


def _need_regex(operand: Any) -> str:
    if not isinstance(operand, str):
        return "needs a regular expression in a string"
    try:
        re.compile(operand)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return ""


def _need_list(operand: Any) -> str:
    if isinstance(operand, list) and operand and not any(_need_scalar(v) for v in operand):
        return ""
    return "needs a non-empty list of strings or numbers"


def _need_number(operand: Any) -> str:
    return "" if _is_number(operand) else "needs a number"


def _need_flag(operand: Any) -> str:
    return "" if isinstance(operand, bool) else "needs true or false"


@dataclass(frozen=True)
class Operator:
    """One way to test a field: the test, how to say it, and what operand it takes."""

    name: str
    test: Callable[[Any, Any], bool]
    says: str
    operand_problem: Callable[[Any], str]


# The vocabulary of field tests; `says` completes "<field> <value> ...".
OPERATORS: Mapping[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", lambda v, o: v == o, "equals {0!r}", _need_scalar),
        Operator("glob", lambda v, o: isinstance(v, str) and fnmatchcase(v, o),
                 "matches {0!r}", _need_string),
        Operator("regex", lambda v, o: isinstance(v, str) and re.search(o, v) is not None,
                 "matches regex {0!r}", _need_regex),
        Operator("in", lambda v, o: v in o, "is one of {0!r}", _need_list),
        Operator("gt", _compare(lambda v, o: v > o), "is greater than {0!r}", _need_number),
        Operator("ge", _compare(lambda v, o: v >= o), "is at least {0!r}", _need_number),
        Operator("lt", _compare(lambda v, o: v < o), "is less than {0!r}", _need_number),
        Operator("le", _compare(lambda v, o: v <= o), "is at most {0!r}", _need_number),
        Operator("exists", lambda v, o: (v is not None) == o, "is set: {0}", _need_flag),
    )
}


@dataclass(frozen=True)
class FieldTest:
    """One field, one operator, one operand."""

    path: str
    operator: str
    operand: Any

    def check(self, payload: Mapping[str, Any]) -> Verdict:
        found, value = lookup(payload, self.path)
        op = OPERATORS[self.operator]
        if not found and self.operator != "exists":
            return Verdict(False, f"{self.path} is not in this event")
        ok = op.test(value, self.operand)
        claim = op.says.format(self.operand)
        return Verdict(ok, f"{self.path} {value!r} {'' if ok else 'NOT '}{claim}".rstrip())


@dataclass(frozen=True)
class AllOf:
    """Every item holds (also what several keys in one table mean)."""

    items: tuple[Condition, ...]

    def check(self, payload: Mapping[str, Any]) -> Verdict:
        verdicts = [item.check(payload) for item in self.items]
        failed = next((v for v in verdicts if not v.ok), None)
        if failed is not None:
            return failed
        return Verdict(True, "; ".join(v.reason for v in verdicts) or "no conditions")


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds."""

    items: tuple[Condition, ...]

    def check(self, payload: Mapping[str, Any]) -> Verdict:
        verdicts = [item.check(payload) for item in self.items]
        passed = next((v for v in verdicts if v.ok), None)
        if passed is not None:
            return passed
        return Verdict(False, "none of: " + " | ".join(v.reason for v in verdicts))


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Condition

    def check(self, payload: Mapping[str, Any]) -> Verdict:
        inner = self.item.check(payload)
        return Verdict(not inner.ok, f"not ({inner.reason})")


@dataclass
class ConditionReader:
    """Turns a ``when`` table into a Condition, collecting (field hint, message) problems."""

    known_fields: frozenset[str]
    problems: list[tuple[str, str]] = field(default_factory=list)

    def read(self, data: Any) -> Condition:
        """The condition for a ``when`` value (a table)."""
        if not isinstance(data, dict):
            return self._fail("when", "must be a table such as { ref = \"CR-*\" }")
        return AllOf(tuple(self._entry(key, value, "") for key, value in data.items()))

    def _entry(self, key: str, value: Any, prefix: str) -> Condition:
        if not prefix and key in COMBINATORS:
            return self._combinator(key, value)
        path = canonical(prefix + key)
        if isinstance(value, dict):
            return self._table(key, path, value)
        if isinstance(value, list):
            return self._fail(key, f"lists the values {value!r}; write {{ in = [...] }} "
                                   "to match any of them")
        self._check_field(key, path)
        is_glob = isinstance(value, str) and GLOB_CHARACTERS & set(value)
        return self._test(key, path, "glob" if is_glob else "eq", value)

    def _table(self, key: str, path: str, value: dict[str, Any]) -> Condition:
        operators = [name for name in value if name in OPERATORS]
        if not operators:  # a TOML dotted key: { response.intent = "x" } nests tables
            return AllOf(tuple(self._entry(k, v, f"{path}.") for k, v in value.items()))
        if len(operators) != len(value):
            unknown = sorted(set(value) - set(operators))
            return self._fail(key, f"mixes operators with {', '.join(unknown)}; operators are "
                                   f"{', '.join(OPERATORS)}")
        self._check_field(key, path)
        return AllOf(tuple(self._test(key, path, name, value[name]) for name in operators))

    def _combinator(self, key: str, value: Any) -> Condition:
        if key == "not":
            if not isinstance(value, dict):
                return self._fail(key, "must be a table, e.g. not = { intent = \"reject\" }")
            return Not(self.read(value))
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            return self._fail(key, f"must be a non-empty list of tables, e.g. {key} = "
                                   "[ { ref = \"CR-*\" }, { ref = \"INC-*\" } ]")
        items = tuple(self.read(item) for item in value)
        return AllOf(items) if key == "all" else AnyOf(items)

    def _test(self, key: str, path: str, operator: str, operand: Any) -> Condition:
        problem = OPERATORS[operator].operand_problem(operand)
        if problem:
            return self._fail(key, f"{operator} {problem}, not {operand!r}")
        return FieldTest(path, operator, operand)

    def _check_field(self, key: str, path: str) -> None:
        if path not in self.known_fields:
            self.problems.append((key, f"condition names {unknown_field(path, self.known_fields)}"))

    def _fail(self, key: str, message: str) -> Condition:
        self.problems.append((key, f"condition '{key}' {message}"))
        return AllOf(())
