"""Alembic from inside ackmail: upgrade, downgrade, and the full revision check.

The same ``migrations/`` folder serves ``ackmail db upgrade`` and plain
``alembic upgrade head``; both end in ``migrations/env.py``. An installed
ackmail carries that folder as ``ingest/_migrations`` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from ingest.errors import StoreError
from ingest.store.db import ping
from ingest.store.schema import MIGRATIONS_DIR as MIGRATIONS_DIR
from ingest.store.schema import PROJECT_ROOT as PROJECT_ROOT
from ingest.store.schema import sqlite_file_missing


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine`` (env.py takes it from the attributes)."""
    ini = PROJECT_ROOT / "alembic.ini"
    # An installed ackmail has no alembic.ini; the script location below is all it needs.
    config = Config(str(ini)) if ini.is_file() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}; the installation is incomplete")
    return head


def _script_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never upgraded (or does not exist)."""
    if sqlite_file_missing(engine):
        return None
    ping(engine)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise StoreError(f"cannot read the schema revision: {exc.orig}") from None


def require_sqlite_folder(engine: Engine) -> None:
    """Refuse a SQLite file in a folder that does not exist: SQLite would not create it."""
    if not sqlite_file_missing(engine):
        return
    folder = Path(str(engine.url.database)).absolute().parent
    if not folder.is_dir():
        raise StoreError(
            f"the folder {folder} of the database file {engine.url.database} does not exist; "
            f"create it (mkdir -p {folder}) or check [database] url"
        )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    require_sqlite_folder(engine)
    ping(engine)
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` removes everything)."""
    ping(engine)
    try:
        command.downgrade(alembic_config(engine), revision)
    except CommandError as exc:
        raise StoreError(
            f"cannot downgrade to '{revision}' ({exc}); 'ackmail db current' shows the revision"
        ) from None


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code was written for."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and sqlite_file_missing(engine):
        require_sqlite_folder(engine)
        raise StoreError(
            f"the database file {engine.url.database} does not exist; run 'ackmail init' "
            "(or 'ackmail db upgrade') to create it, or check [database] url"
        )
    if current is None:
        raise StoreError(
            "the database has no ackmail tables yet; run 'ackmail db upgrade' (or 'ackmail init')"
        )
    known = {
        script.revision for script in ScriptDirectory.from_config(_script_config()).walk_revisions()
    }
    if current not in known:
        raise StoreError(
            f"the database is at revision {current}, which this ackmail does not know "
            f"(it knows up to {head}): a newer ackmail migrated it; upgrade ackmail to match"
        )
    raise StoreError(
        f"the database is at revision {current} but this ackmail needs {head}; "
        "run 'ackmail db upgrade'"
    )
