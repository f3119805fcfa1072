"""Contracts of the rules package: problems, deliveries, the action environment, ``Action``.

An action is a small class behind the ``Action`` protocol. Built-ins and plugins
(entry-point group ``ackmail.actions``) are registered by ``name`` in one
registry (``rules.actions.registry``). A plugin's entry point names a callable
that takes an ``ActionEnvironment`` and returns an ``Action`` — a class with an
``__init__(self, env)`` is the usual shape::

    class PagerAction:
        name = "pager"

        def __init__(self, env: ActionEnvironment) -> None:
            self.env = env

        def prepare(self, params: Params) -> dict[str, Any]:
            return {"service": params.text("service")}

        def deliver(self, delivery: Delivery) -> dict[str, Any]:
            ...  # raise TransientError to be retried, PermanentError to give up
            return {"paged": True}

    # pyproject.toml of the plugin:
    # [project.entry-points."ackmail.actions"]
    # pager = "ackmail_pager:PagerAction"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config import Settings, SmtpConfig
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from rules.params import Params  # params imports templates, which need no base

DEFAULT_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a rules file, at a line, with the remedy in the message."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class RulesError(ConfigError):
    """A rules file that cannot be used; carries every problem found, each with file:line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Delivery:
    """One attempt at one outcome: the event as stored, the action's params, the attempt."""

    outcome_id: int
    event_id: int
    event_type: str
    rule: str
    payload: Mapping[str, Any]
    params: Mapping[str, Any]
    attempt: int = 1

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt of this outcome, so a receiver can drop repeats."""
        return str(self.outcome_id)


@dataclass(frozen=True)
class ActionEnvironment:
    """What actions may use besides their params: SMTP, token providers, the database."""

    smtp: SmtpConfig | None = None
    providers: TokenProviders | None = None
    engine: Engine | None = None
    message_id_domain: str = "ackmail.invalid"

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> ActionEnvironment:
        """The environment of a configured installation (``engine`` for delivery)."""
        return cls(
            smtp=settings.smtp,
            providers=TokenProviders(settings.state_dir, settings.security.cache_key),
            engine=engine,
            message_id_domain=settings.requests.message_id_domain,
        )


class Action(Protocol):
    """One kind of outcome (webhook, email...), keyed by ``name`` in the registry."""

    name: str

    def prepare(self, params: Params) -> dict[str, Any]:
        """Validate the rules-file params (report problems on ``params``); return what to store.

        The result is stored in the outcome row as JSON, so it must never hold a
        secret in clear text: keep ``{ env = ... }`` / ``{ file = ... }`` references.
        """
        ...

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """Carry out one attempt; return facts worth keeping (status code, recipients).

        Raise ``TransientError`` to be retried with backoff, ``PermanentError``
        to stop at once (the outcome goes to ``dead`` with the message).
        """
        ...
