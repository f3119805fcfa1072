"""Typed, key-tracking access to one TOML table, for the config loader.

Each accessor consumes a key; ``finish()`` then reports any key nobody asked
for, so a typo such as ``hots = ...`` is an error that names the key, the table
and the file (with a suggestion), instead of a silently ignored setting.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from ingest.errors import ConfigError
from ingest.timeutil import parse_duration


class _Missing:
    """Sentinel type for 'no default: the key is required'."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, repr=False)
class Secret:
    """A secret value that never shows itself in repr, str, logs or tracebacks."""

    value: str = field(compare=False)
    source: str

    def reveal(self) -> str:
        """The clear value, for the one call that needs it (a login, an HMAC)."""
        return self.value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, from {self.source})"

    __str__ = __repr__


class Section:
    """One TOML table, read key by key."""

    def __init__(self, data: Any, where: str, path: Path, *, toml: str = "",
                 within: str = "", is_item: bool = False) -> None:
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: {where or 'the top level'} must be a table, not {type(data).__name__}"
            )
        self.data: dict[str, Any] = data
        self.where = where
        self.path = path
        self.toml = toml  # the table's name as the file writes it: mailbox.oauth
        self.within = within  # the [[array]] entry it belongs to: [[mailbox]] 'approvals'
        self.is_item = is_item
        self._used: set[str] = set()

    @property
    def empty(self) -> bool:
        return not self.data

    def rename(self, where: str) -> None:
        """Use a friendlier name (e.g. the mailbox's name) in later messages."""
        self.where = where

    def has(self, key: str) -> bool:
        return key in self.data

    def fail(self, key: str, problem: str) -> NoReturn:
        """Raise the standard error for ``key``: file, table, key, then the problem."""
        raise ConfigError(f"{self.path}: {self._label(key)} {problem}")

    def _label(self, key: str) -> str:
        return f"{self.where} key '{key}'" if self.where else f"key '{key}'"

    def _take(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            self.fail(key, f"is required but missing{self._misspelt(key)}")
        return default

    def _misspelt(self, key: str) -> str:
        unused = [name for name in self.data if name not in self._used]
        hint = difflib.get_close_matches(key, unused, n=1)
        return f" ('{hint[0]}' is there: did you mean '{key}'?)" if hint else ""

    def _typed(self, key: str, default: Any, kind: type | tuple[type, ...], described: str) -> Any:
        value = self._take(key, default)
        if value is default:
            return value
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"must be {described}, not {value!r}")
        return value

    def text(self, key: str, default: Any = MISSING) -> Any:
        value = self._typed(key, default, str, "a string")
        if value is not default and not value.strip():
            self.fail(key, "must not be empty")
        return value

    def flag(self, key: str, default: Any = MISSING) -> Any:
        return self._typed(key, default, bool, "true or false")

    def integer(self, key: str, default: Any = MISSING, *, low: int, high: int) -> Any:
        value = self._typed(key, default, int, "a whole number")
        if value is not default and not low <= value <= high:
            self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not '{value}'")
        return value

    def email(self, key: str, default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if value and value is not default and "@" not in value:
            self.fail(key, f"must be an email address, not '{value}'")
        return value

    def https_url(self, key: str, default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if not value.startswith("https://"):
            self.fail(key, f"must be an https:// URL, not '{value}'")
        return value.rstrip("/")

    def file_path(self, key: str, default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if value is None or value is default:
            return value
        return (self.path_base / Path(value).expanduser()).absolute()

    @property
    def path_base(self) -> Path:
        return self.path.parent

    def calendar_date(self, key: str, default: Any = MISSING) -> Any:
        return self._typed(key, default, date, "a date such as 2028-06-30 (no quotes)")

    def duration(self, key: str, default: Any = MISSING) -> Any:
        value = self.text(key, default)
        try:
            parse_duration(value)
        except ValueError as exc:
            self.fail(key, str(exc))
        return value

    def str_list(self, key: str, default: Any = MISSING) -> Any:
        value = self._typed(key, default, list, "a list of strings")
        if any(not isinstance(item, str) for item in value):
            self.fail(key, "must be a list of strings")
        return value

    def section(self, key: str, *, required: bool = False) -> Section:
        """The sub-table ``key`` (an empty one when absent and not required)."""
        data = self._take(key, MISSING if required else {})
        toml, within = self._child(key)
        return Section(data, f"{within} [{toml}]".lstrip(), self.path, toml=toml, within=within)

    def array(self, key: str) -> list[Section]:
        """The array of tables ``[[key]]``, each as a Section."""
        items = self._take(key, [])
        toml, within = self._child(key)
        if not isinstance(items, list):
            self.fail(key, f"must be written as [[{toml}]] tables")
        return [Section(item, f"{within} [[{toml}]] #{n}".lstrip(), self.path, toml=toml,
                        is_item=True) for n, item in enumerate(items, 1)]

    def _child(self, key: str) -> tuple[str, str]:
        """A sub-table's dotted TOML name, and the [[array]] entry it is written in."""
        toml = f"{self.toml}.{key}" if self.toml else key
        return toml, self.where if self.is_item else self.within

    def secret(self, key: str, *, required: bool = False) -> Secret | None:
        """Resolve ``{ env = "NAME" }``, ``{ file = "PATH" }`` or an inline string."""
        value = self._take(key, MISSING if required else None)
        if value is None:
            return None
        if isinstance(value, str):
            return Secret(value, "inline")
        if not isinstance(value, dict) or len(value) != 1 or not {"env", "file"} & value.keys():
            self.fail(key, 'must be { env = "NAME" } or { file = "PATH" }')
        if "env" in value:
            return self._secret_from_env(key, str(value["env"]))
        return self._secret_from_file(key, str(value["file"]))

    def _secret_from_env(self, key: str, name: str) -> Secret:
        clear = os.environ.get(name)
        if clear is None or not clear.strip():
            state = "not set" if clear is None else "empty"
            self.fail(
                key,
                f"reads environment variable {name}, which is {state}; export it with the "
                'secret, or point the key at a file with { file = "PATH" }',
            )
        return Secret(clear, f"env {name}")

    def _secret_from_file(self, key: str, name: str) -> Secret:
        file = (self.path_base / Path(name).expanduser()).absolute()
        try:
            clear = file.read_text(encoding="utf-8-sig").strip()
        except FileNotFoundError:
            self.fail(key, f"reads {file}, which does not exist; create it or fix the path")
        except PermissionError:
            self.fail(key, f"reads {file}, which this user may not read; give the user running "
                           "ackmail read permission (chmod 600, owned by that user)")
        except OSError as exc:
            self.fail(key, f"reads {file}, which cannot be read ({exc.strerror}); fix the path")
        except UnicodeDecodeError:
            self.fail(key, f"reads {file}, which is not UTF-8 text; write the secret as plain "
                           "UTF-8 text")
        if not clear:
            self.fail(key, f"reads {file}, which is empty; put the secret in it")
        return Secret(clear, f"file {file}")

    def finish(self) -> None:
        """Fail on the first key that no accessor consumed."""
        for key in self.data:
            if key not in self._used:
                hint = difflib.get_close_matches(key, self._used, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                self.fail(key, f"is not a known setting{suggestion}; remove it or fix its name")
