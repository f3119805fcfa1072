"""What every command needs, loaded on first use: the settings and the database."""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.config import CONFIG_ENV, DATABASE_URL_ENV, Settings, config_path_from, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


def defaults_notice(settings: Settings) -> str:
    """What a command without a configuration file runs with, so nobody wonders."""
    database = (f"the database in {DATABASE_URL_ENV}" if DATABASE_URL_ENV in os.environ
                else settings.database_url)
    return (f"no configuration file {settings.path}; using the defaults: {database}, "
            "no mailboxes, no rules file (run 'ackmail init' to write one)")


class CommandContext:
    """Lazily loaded settings and engine for one command invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @property
    def config_path(self) -> Path:
        return config_path_from(self.args.config)

    @cached_property
    def settings(self) -> Settings:
        """The validated configuration; a missing file means the embedded default (SQLite)."""
        explicit = self.args.config is not None or CONFIG_ENV in os.environ
        settings = load_settings(self.config_path, require_file=explicit)
        if not explicit and not self.config_path.exists():
            print(f"ackmail: {defaults_notice(settings)}", file=sys.stderr)
        return settings

    @cached_property
    def engine(self) -> Engine:
        """An engine on the configured database, whatever its schema revision."""
        # SQLAlchemy loads here, not at start-up: `--help` and `parse` never need it.
        from ingest.store.db import make_engine

        return make_engine(self.settings.database_url)

    def close(self) -> None:
        """Release database connections (an engine is only made if a command used one)."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    def store(self) -> Engine:
        """The engine, after checking the schema is the one this code expects."""
        from ingest.store.schema import require_current

        require_current(self.engine)
        return self.engine
