"""The schema: upgrade, downgrade, no drift between models and migrations, plain alembic."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from ingest.store import migrate
from ingest.store.db import make_engine
from ingest.store.migrate import PROJECT_ROOT
from ingest.store.models import Base
from tests.servers.postgres_fixtures import on_postgresql

TABLES = {"requests", "recipients", "messages", "responses", "checkpoints", "events", "outcomes"}
VIEWS = {"pending_requests", "decisions", "ignored_messages"}


def test_upgrade_creates_every_table_and_view(engine: Engine) -> None:
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= TABLES
    assert set(inspector.get_view_names()) == VIEWS
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) <= {"alembic_version"}
    assert inspector.get_view_names() == []
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_plain_alembic_upgrade_head_uses_ackmail_database_url(db_url: str) -> None:
    env = {**os.environ, "ACKMAIL_DATABASE_URL": db_url, "ACKMAIL_CONFIG": "/nonexistent.toml"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def _raw_compression(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'raw_messages'::regclass "
            "AND attname = 'raw'").scalar())


@on_postgresql
def test_raw_bytes_are_compressed_with_lz4_on_postgresql(engine: Engine) -> None:
    assert _raw_compression(engine) == "l"
    migrate.downgrade(engine, "0002")
    assert _raw_compression(engine) == ""
    migrate.upgrade(engine)
    assert _raw_compression(engine) == "l"
