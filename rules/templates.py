"""Text templates filled from an event's fields: ``${request.ref}``, ``$event``.

``string.Template`` with dotted names: no expressions, no attribute access, no
code — a template can only read payload fields, so a rules file cannot run
anything. Names are checked against the rule's event fields when the rules load.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping
from typing import Any

from rules.fields import canonical, lookup


class FieldTemplate(string.Template):
    """``$name`` / ``${name}`` where a name may be a dotted path (``${response.address}``)."""

    idpattern = r"(?a:[_a-z][_a-z0-9]*(?:\.[_a-z][_a-z0-9]*)*)"


def template_problems(text: str, known: frozenset[str]) -> list[str]:
    """What is wrong with ``text`` as a template for events carrying ``known`` fields."""
    template = FieldTemplate(text)
    if not template.is_valid():
        return [
            f"template {text!r} has a '$' that starts no field name; "
            "write $$ for a dollar sign or ${field} for a field"
        ]
    return [
        f"template {text!r} uses {unknown_field(name, known)}"
        for name in template.get_identifiers()
        if canonical(name) not in known
    ]


def unknown_field(name: str, known: frozenset[str]) -> str:
    """'field X, which ... do not carry' plus a suggestion, or the known fields."""
    hint = difflib.get_close_matches(canonical(name), sorted(known), n=1)
    remedy = f"did you mean '{hint[0]}'?" if hint else f"known fields: {', '.join(sorted(known))}"
    return f"field '{name}', which this rule's events do not carry; {remedy}"


def render(text: str, payload: Mapping[str, Any]) -> str:
    """``text`` with every field filled from ``payload`` (absent or null fields as '')."""
    return FieldTemplate(text).substitute(_Fields(payload))


class _Fields(Mapping[str, str]):
    """A read-only view of the payload by dotted path, for ``Template.substitute``."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload

    def __getitem__(self, key: str) -> str:
        found, value = lookup(self.payload, key)
        if not found or value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0
