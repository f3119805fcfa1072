"""Typed access to one ``[[rule.action]]`` table that collects problems instead of raising.

Actions read their settings through ``Params`` in ``prepare``; every problem is
kept with the key it concerns, so ``rules check`` can report all of them, each at
its line. Secrets are written ``{ env = "NAME" }`` or ``{ file = "PATH" }`` and are
stored in the outbox only as that reference, never as the value.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingest.config.reader import Secret
from ingest.errors import ConfigError
from rules.templates import template_problems

MISSING: Any = object()


class Params:
    """The keys of one action table, read one by one; ``finish`` reports the unread ones."""

    def __init__(self, data: Mapping[str, Any], *, fields: frozenset[str], base_dir: Path) -> None:
        self.data = data
        self.fields = fields
        self.base_dir = base_dir
        self.problems: list[tuple[str, str]] = []
        self._used: set[str] = set()

    def problem(self, key: str, message: str) -> None:
        """Record a problem at ``key``'s line; ``message`` says what is wrong and the fix."""
        self.problems.append((key, message))

    def _bad(self, key: str, message: str) -> None:
        self.problem(key, f"{key} {message}")

    def _take(self, key: str, default: Any, kind: type | tuple[type, ...], described: str) -> Any:
        self._used.add(key)
        if key not in self.data:
            if default is MISSING:
                self._bad(key, "is required but missing")
            return None if default is MISSING else default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self._bad(key, f"must be {described}, not {value!r}")
            return None if default is MISSING else default
        return value

    def text(self, key: str, default: Any = MISSING) -> Any:
        """A non-empty string."""
        value = self._take(key, default, str, "a string")
        if isinstance(value, str) and not value.strip() and value is not default:
            self._bad(key, "must not be empty")
        return value

    def number(self, key: str, default: Any = MISSING, *, low: float, high: float) -> Any:
        """A number between ``low`` and ``high``."""
        value = self._take(key, default, (int, float), "a number")
        if value is not None and value is not default and not low <= value <= high:
            self._bad(key, f"must be between {low} and {high}, not {value}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = MISSING) -> Any:
        """One of ``choices``."""
        value = self.text(key, default)
        if value is not None and value not in choices:
            self._bad(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def str_list(self, key: str, default: Any = MISSING) -> Any:
        """A list of strings (a single string is taken as a list of one)."""
        value = self._take(key, default, (list, str), "a list of strings")
        if isinstance(value, str):
            return [value]
        if value is not None and not all(isinstance(item, str) and item for item in value):
            self._bad(key, "must be a list of non-empty strings")
        return value

    def template(self, key: str, default: Any = MISSING) -> Any:
        """A string whose ``${field}`` names are fields of the rule's events."""
        value = self.text(key, default)
        if isinstance(value, str):
            for message in template_problems(value, self.fields):
                self._bad(key, message)
        return value

    def secret_ref(self, key: str, *, required: bool = False) -> dict[str, str] | None:
        """A ``{ env = NAME }`` or ``{ file = PATH }`` reference, checked to be readable now."""
        described = 'a table like { env = "NAME" }'
        value = self._take(key, MISSING if required else None, dict, described)
        if value is None:
            return None
        if len(value) != 1 or not isinstance(next(iter(value.values())), str) or \
                next(iter(value)) not in ("env", "file"):
            self._bad(key, 'must be { env = "NAME" } or { file = "PATH" }; secrets are never '
                              "written in the rules file itself")
            return None
        ref = dict(value)
        if "file" in ref:
            ref["file"] = str((self.base_dir / Path(ref["file"]).expanduser()).absolute())
        try:
            resolve_secret(ref)
        except ConfigError as exc:
            self._bad(key, str(exc))
        return ref

    def finish(self) -> None:
        """Report every key that no accessor read (a typo, or a setting of another action)."""
        for key in self.data:
            if key not in self._used:
                hint = difflib.get_close_matches(key, self._used, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                known = ", ".join(sorted(self._used))
                self._bad(key, f"is not a setting of this action{suggestion}; known: {known}")


def resolve_secret(ref: Mapping[str, str]) -> Secret:
    """The secret a stored reference points at, read now (so a rotated secret is picked up)."""
    if "env" in ref:
        value = os.environ.get(ref["env"])
        if not value:
            raise ConfigError(f"reads environment variable {ref['env']}, which is not set; "
                              "export it where ackmail runs")
        return Secret(value, f"env {ref['env']}")
    path = Path(ref["file"])
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"reads {path}, which cannot be read ({exc.strerror}); "
                          "create it or fix the path") from None
    if not value:
        raise ConfigError(f"reads {path}, which is empty; put the secret in it")
    return Secret(value, f"file {path}")
