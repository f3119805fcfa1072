"""The schema check every command makes, without loading Alembic.

Alembic costs a tenth of a second to import, more than the rest of ``acks list``;
so the check reads the revision the database records with one query and the
newest revision from the migration files' own ``revision``/``down_revision``
lines. Anything unexpected (an unreadable file, several heads, a mismatch) goes
to Alembic's full check in ``ingest.store.migrate``, which explains the problem.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALLED_MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "_migrations"
MIGRATIONS_DIR = (
    INSTALLED_MIGRATIONS_DIR if INSTALLED_MIGRATIONS_DIR.is_dir() else PROJECT_ROOT / "migrations"
)
_LINE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)\s*$', re.MULTILINE)


def head_from_files(versions: Path | None = None) -> str | None:
    """The one revision no migration builds on, or None when the files do not say clearly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((versions or MIGRATIONS_DIR / "versions").glob("*.py")):
        try:
            found = dict((key, value) for key, value in _LINE.findall(path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError):
            return None
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        parents.add(found.get("down_revision", ""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def sqlite_file_missing(engine: Engine) -> bool:
    """True for a SQLite URL whose file does not exist (connecting would create it)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return False
    return not Path(database).exists()


def recorded_revision(engine: Engine) -> str | None:
    """The revision in the database's ``alembic_version`` table; None if it cannot be read."""
    if sqlite_file_missing(engine):
        return None
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code was written for."""
    head = head_from_files()
    if head is not None and recorded_revision(engine) == head:
        return
    from ingest.store import migrate  # the slow path explains what is wrong

    migrate.require_current(engine)
