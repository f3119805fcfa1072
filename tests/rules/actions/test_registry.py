"""The action registry: built-ins, entry-point plugins, and loud failures on clashes."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import ConfigError, PermanentError
from rules.actions.registry import ENTRY_POINT_GROUP, build_registry
from rules.base import ActionEnvironment, Delivery
from rules.loader import parse_rules
from rules.params import Params

HERE = "tests.rules.actions.test_registry"


class PagerAction:
    """A third-party action, as a plugin package would ship it."""

    name = "pager"
    def __init__(self, env: ActionEnvironment) -> None:
        self.env = env
        self.delivered: list[Delivery] = []

    def prepare(self, params: Params) -> dict[str, Any]:
        return {"service": params.text("service")}

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        self.delivered.append(delivery)
        return {"paged": delivery.params["service"]}


class FakeWebhook(PagerAction):
    name = "webhook"


def _point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{HERE}:{target}", group=ENTRY_POINT_GROUP)


def test_builtins_are_registered_in_order() -> None:
    registry = build_registry(ActionEnvironment(), plugins=[])
    assert registry.names() == ["webhook", "email", "command", "log"]


def test_a_plugin_is_found_through_its_entry_point_and_validated(tmp_path: Path) -> None:
    registry = build_registry(ActionEnvironment(), plugins=[_point("pager", "PagerAction")])
    assert registry.names()[-1] == "pager"
    text = ('[[rule]]\nname = "page"\non = "request.expired"\n[[rule.action]]\n'
            'type = "pager"\nservice = "on-call"\n')
    rules = parse_rules(text, tmp_path / "rules.toml", registry)
    assert rules.rules[0].actions[0].params == {"service": "on-call", "max_attempts": 8}
    broken = text.replace('service = "on-call"', 'servce = "on-call"')
    with pytest.raises(ConfigError, match=r":4: pager action: service is required.*\n.*:6: "
                                          r"pager action: servce is not a setting"):
        parse_rules(broken, tmp_path / "rules.toml", registry)


def test_the_installed_entry_points_are_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        seen.append(group)
        return [_point("pager", "PagerAction")]

    monkeypatch.setattr("rules.actions.registry.entry_points", fake_entry_points)
    assert "pager" in build_registry(ActionEnvironment()).names()
    assert seen == [ENTRY_POINT_GROUP]


def test_a_duplicate_name_is_an_error_naming_both() -> None:
    with pytest.raises(ConfigError) as failure:
        build_registry(ActionEnvironment(), plugins=[_point("hook", "FakeWebhook")])
    assert "two actions are called 'webhook'" in str(failure.value)
    assert "built-in WebhookAction" in str(failure.value)
    assert f"{HERE}:FakeWebhook" in str(failure.value)


def test_a_plugin_that_cannot_load_is_named() -> None:
    with pytest.raises(ConfigError, match=r"action plugin gone = .*cannot be loaded"):
        build_registry(ActionEnvironment(), plugins=[_point("gone", "NoSuchClass")])


def test_an_outcome_for_a_vanished_action_is_permanent() -> None:
    with pytest.raises(PermanentError, match="no action is called 'pager'"):
        build_registry(ActionEnvironment(), plugins=[]).require("pager")


class BrokenPager(PagerAction):
    def prepare(self, params: Params) -> dict[str, Any]:
        raise KeyError("service")


def test_a_plugin_that_crashes_on_its_settings_is_reported_at_its_line(tmp_path: Path) -> None:
    registry = build_registry(ActionEnvironment(), plugins=[_point("pager", "BrokenPager")])
    text = ('[[rule]]\nname = "page"\non = "request.expired"\n[[rule.action]]\n'
            'type = "pager"\nservice = "on-call"\n')
    with pytest.raises(ConfigError) as failure:
        parse_rules(text, tmp_path / "rules.toml", registry)
    assert str(failure.value) == (
        f"{tmp_path / 'rules.toml'}:5: pager action: the pager action failed to check its "
        "settings (KeyError: 'service'); report it to its author")
