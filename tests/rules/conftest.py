"""Helpers for the rules tests: events as ingest writes them, and rule sets from text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.parse.base import Intent
from ingest.store.db import transaction
from ingest.store.events import add_event
from ingest.store.models import RequestStatus
from rules.actions.registry import ActionRegistry, build_registry
from rules.base import ActionEnvironment
from rules.loader import RuleSet, parse_rules
from tests.factories import add_message, add_request, add_response

AddEvent = Callable[..., int]
MakeRules = Callable[[str], RuleSet]


@pytest.fixture
def add_decision(engine: Engine) -> AddEvent:
    """Write a decided request with its response and a ``request.<status>`` event; its id."""

    def add(ref: str = "CR-1", status: RequestStatus = RequestStatus.APPROVED,
            intent: Intent = Intent.APPROVE, address: str = "alice@example.test") -> int:
        with transaction(engine) as session:
            request = add_request(session, ref=ref, status=status, responders=(address,))
            response = add_response(session, request, intent=intent, address=address)
            message = add_message(session)
            event = add_event(session, f"request.{status}", request=request, response=response,
                              message=message)
            session.flush()
            return event.id

    return add


@pytest.fixture
def registry() -> ActionRegistry:
    """The built-in actions, without SMTP and without plugins."""
    return build_registry(ActionEnvironment(), plugins=[])


@pytest.fixture
def make_rules(tmp_path: Path, registry: ActionRegistry) -> MakeRules:
    """Rules from TOML text, validated like a file."""

    def make(text: str) -> RuleSet:
        return parse_rules(text, tmp_path / "rules.toml", registry)

    return make
