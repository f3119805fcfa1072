"""Alembic environment: the generic one, pointed at ackmail's models and database.

The engine comes from ``config.attributes["engine"]`` when ackmail (or a test)
calls Alembic, otherwise from ``-x url=...`` or ackmail's own configuration, so
that plain ``alembic upgrade head`` migrates the same database ackmail uses.
"""

from __future__ import annotations

import logging.config
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, Engine

from ingest.config import config_path_from, load_settings
from ingest.store.db import make_engine
from ingest.store.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    if config.config_file_name and not config.attributes.get("quiet"):
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url is None:
        url = load_settings(Path(config_path_from(None)), require_file=False).database_url
    return make_engine(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("ackmail migrations run online only: drop --sql")
run_migrations_online()
