"""The one registry of actions: the built-ins, then ``ackmail.actions`` entry-point plugins.

Built once at start-up and keyed by name; two actions with the same name are an
error that names both, never a silent override (a plugin cannot replace
``webhook`` behind the operator's back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

from ingest.errors import ConfigError, PermanentError
from rules.actions.command import CommandAction
from rules.actions.email import EmailAction
from rules.actions.log import LogAction
from rules.actions.webhook import WebhookAction
from rules.base import Action, ActionEnvironment

ENTRY_POINT_GROUP = "ackmail.actions"
ActionFactory = Callable[[ActionEnvironment], Action]

# The actions every installation has, in the order `rules check` lists them.
BUILTIN_ACTIONS: tuple[ActionFactory, ...] = (WebhookAction, EmailAction, CommandAction, LogAction)


class ActionRegistry:
    """Actions by name."""

    def __init__(self, actions: Mapping[str, Action]) -> None:
        self._actions = dict(actions)

    def get(self, name: str) -> Action | None:
        """The action called ``name``, or None."""
        return self._actions.get(name)

    def require(self, name: str) -> Action:
        """The action called ``name``; a stored outcome naming a vanished action is permanent."""
        action = self._actions.get(name)
        if action is None:
            raise PermanentError(
                f"no action is called '{name}' any more (was its plugin uninstalled?); "
                "reinstall it and run 'ackmail outcomes retry ID'"
            )
        return action

    def names(self) -> list[str]:
        """Every registered name, built-ins first."""
        return list(self._actions)


def build_registry(
    env: ActionEnvironment, *, plugins: Iterable[EntryPoint] | None = None
) -> ActionRegistry:
    """The built-ins plus every plugin of the ``ackmail.actions`` group."""
    found = entry_points(group=ENTRY_POINT_GROUP) if plugins is None else plugins
    actions: dict[str, Action] = {}
    origins: dict[str, str] = {}
    candidates = [(factory, f"built-in {factory.__name__}") for factory in BUILTIN_ACTIONS]
    candidates += [(_load(point), f"plugin {point.name} = {point.value!r}") for point in found]
    for factory, origin in candidates:
        action = _create(factory, origin, env)
        if action.name in actions:
            raise ConfigError(
                f"two actions are called '{action.name}': {origins[action.name]} and {origin}; "
                "uninstall one of the plugins"
            )
        actions[action.name] = action
        origins[action.name] = origin
    return ActionRegistry(actions)


def _load(point: EntryPoint) -> ActionFactory:
    try:
        factory: ActionFactory = point.load()
    except Exception as exc:  # a broken plugin must be named, whatever it raised
        raise ConfigError(
            f"action plugin {point.name} = {point.value!r} cannot be loaded "
            f"({type(exc).__name__}: {exc}); reinstall or uninstall it"
        ) from None
    return factory


def _create(factory: ActionFactory, origin: str, env: ActionEnvironment) -> Action:
    try:
        action = factory(env)
    except Exception as exc:  # as above: the operator needs to know which plugin
        raise ConfigError(
            f"{origin} cannot be set up ({type(exc).__name__}: {exc}); fix or uninstall it"
        ) from None
    name = getattr(action, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{origin} has no name; an action needs a 'name' string attribute")
    return action
