"""Line numbers for a rules file, found by scanning its text (tomllib gives none).

Rule N is the N-th ``[[rule]]`` header; its actions are the ``[[rule.action]]``
headers before the next ``[[rule]]``; a key is the first line in its table that
starts with ``key =`` (or ``key.`` for a dotted key, or a ``[rule.key]`` header).
Lines inside multi-line strings and comments are never taken for headers.
When nothing matches, the enclosing table's header line is the answer, so every
problem still points somewhere near.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TRIPLE_QUOTES = ('"""', "'''")


@dataclass(frozen=True)
class _Table:
    name: str  # "rule", "rule.action", "rule.when", ...
    line: int  # 1-based line of the header
    end: int  # last line before the next header


class SourceMap:
    """Where rules, actions and keys are written in one rules file."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tables = self._tables()

    def _tables(self) -> list[_Table]:
        starts: list[tuple[str, int]] = []
        inside_string: str | None = None
        for number, line in enumerate(self.lines, 1):
            if inside_string is None:
                match = _HEADER.match(line)
                if match:
                    starts.append((re.sub(r"[\s\"']", "", match.group(2)), number))
            for quotes in _TRIPLE_QUOTES:
                if line.count(quotes) % 2 and inside_string in (None, quotes):
                    inside_string = None if inside_string else quotes
        # A file with no table header at all (empty, comments, top-level keys) has no tables.
        ends = [line - 1 for _, line in starts[1:]] + [len(self.lines)][: len(starts)]
        return [_Table(name, line, end) for (name, line), end in zip(starts, ends, strict=True)]

    def _rule_tables(self, rule: int) -> list[_Table]:
        """The tables of rule number ``rule`` (0-based): its header, then its sub-tables."""
        found: list[_Table] = []
        count = -1
        for table in self.tables:
            if table.name == "rule":
                count += 1
            if count == rule and (table.name == "rule" or table.name.startswith("rule.")):
                found.append(table)
        return found

    def rule_line(self, rule: int) -> int:
        """The line of rule ``rule``'s ``[[rule]]`` header (1 when it has none)."""
        tables = self._rule_tables(rule)
        return tables[0].line if tables else 1

    def action_line(self, rule: int, action: int) -> int:
        """The line of the ``action``-th ``[[rule.action]]`` of rule ``rule``."""
        actions = [t for t in self._rule_tables(rule) if t.name == "rule.action"]
        return actions[action].line if action < len(actions) else self.rule_line(rule)

    def key_line(self, rule: int, key: str, action: int | None = None) -> int:
        """The line where ``key`` is written in the rule (or in one of its actions)."""
        tables = self._rule_tables(rule)
        if action is not None:
            actions = [t for t in tables if t.name == "rule.action"]
            owner = actions[action] if action < len(actions) else None
        else:
            owner = tables[0] if tables else None
        if owner is None:
            return self.rule_line(rule)
        found = self._find_key(owner, key)
        if found is None and action is None:
            found = next((t.line for t in tables if t.name == f"rule.{key}"), None)
        return found or owner.line

    def find_key_after(self, line: int, key: str, end: int | None = None) -> int | None:
        """The first line from ``line`` on (to ``end``) that assigns ``key``, if any."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=.]|[{{,]\s*[\"']?"
                             rf"{re.escape(key)}[\"']?\s*=")
        last = end if end is not None else len(self.lines)
        for number in range(line, last + 1):
            if pattern.search(self.lines[number - 1]):
                return number
        return None

    def _find_key(self, table: _Table, key: str) -> int | None:
        return self.find_key_after(table.line + 1, key, table.end)

    def rule_span(self, rule: int) -> tuple[int, int]:
        """First and last line of rule ``rule`` and all its sub-tables."""
        tables = self._rule_tables(rule)
        if not tables:
            return 1, len(self.lines)
        return tables[0].line, tables[-1].end
