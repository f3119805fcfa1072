"""The fast schema check: the same verdict as Alembic's, without importing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.errors import StoreError
from ingest.store import migrate
from ingest.store.schema import head_from_files, recorded_revision, require_current


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_from_files() == migrate.head_revision()


def test_a_database_at_head_passes_and_its_revision_is_read(engine: Engine) -> None:
    require_current(engine)
    assert recorded_revision(engine) == migrate.head_revision()


def test_a_database_behind_is_refused_with_what_to_run(engine: Engine) -> None:
    migrate.downgrade(engine, "-1")
    with pytest.raises(StoreError, match=f"needs {migrate.head_revision()}; run 'ackmail db up"):
        require_current(engine)


def test_an_empty_database_is_refused(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert recorded_revision(engine) is None
    with pytest.raises(StoreError, match="no ackmail tables yet"):
        require_current(engine)


def test_files_with_two_heads_or_no_revision_line_give_no_head(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision: str = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    assert head_from_files(tmp_path) == "b"
    (tmp_path / "c.py").write_text('revision: str = "c"\ndown_revision: str | None = "a"\n')
    assert head_from_files(tmp_path) is None
    (tmp_path / "c.py").write_text("revision = make_revision()\n")
    assert head_from_files(tmp_path) is None
