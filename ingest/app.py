"""The assembly: the one place that composes ingest and the rules engine.

Commands ask here for the pieces they run (the token providers, the rules, the
dispatcher, the poller, the web app), so no command has to import another to
build them, and each command loads only what it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ingest.auth import TokenProviders
from ingest.config import Settings
from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.pipeline import PipelineConfig
from ingest.poller.folder_pass import Report
from ingest.poller.service import Poller, PollOptions
from ingest.poller.upkeep import Task
from ingest.store.expiry import expire_requests
from rules.actions.registry import ActionRegistry, build_registry
from rules.base import ActionEnvironment
from rules.dispatch import DispatchConfig, Dispatcher
from rules.loader import RuleSet, load_rules

if TYPE_CHECKING:
    from ingest.web.app import OpsApp


def token_providers(settings: Settings) -> TokenProviders:
    """The token providers of this installation (caches under the state directory)."""
    return TokenProviders(settings.state_dir, settings.security.cache_key)


def rules_path(settings: Settings, given: Path | None = None) -> Path:
    """``given``, else ``[rules] file``, else a ConfigError saying how to set one."""
    path = given or settings.rules_file
    if path is None:
        raise ConfigError(
            f"{settings.path}: [rules] file is not set; add [rules] file = \"rules.toml\" "
            "(see ingest/cli/templates/rules.toml for an example) or name the file"
        )
    return path


def configured_rules(
    settings: Settings, given: Path | None = None, engine: Engine | None = None
) -> tuple[RuleSet, ActionRegistry]:
    """The validated rules and the registry their actions run with (``engine`` for delivery)."""
    registry = build_registry(ActionEnvironment.from_settings(settings, engine))
    return load_rules(rules_path(settings, given), registry), registry


def dispatcher(settings: Settings, engine: Engine, interval: float = 2.0) -> Dispatcher:
    """The dispatcher: the expiry sweep, then events through the rules, outcomes delivered."""
    rules, registry = configured_rules(settings, engine=engine)
    return Dispatcher(engine, rules, registry, DispatchConfig(idle_seconds=interval),
                      housekeeping=(expire_requests,))


def poller(
    settings: Settings,
    engine: Engine,
    options: PollOptions,
    *,
    background: Sequence[Task] = (),
    report: Report | None = None,
) -> Poller:
    """The poller over the configured mailboxes, running ``background`` between rounds."""
    return Poller(settings, engine, PipelineConfig.from_settings(settings), options=options,
                  background=background, providers=token_providers(settings), report=report)


def web_app(settings: Settings, engine: Engine, token: Secret | None) -> OpsApp:
    """The ops web application (health, metrics, read-only pages)."""
    # Jinja2 and the pages load only when something serves them: a poll without [serve]
    # starts without them.
    from ingest.web.app import OpsApp
    from ingest.web.site import Site

    return OpsApp(Site.create(settings, engine), token=token)
