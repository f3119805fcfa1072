"""A folder's checkpoint: created on first load, moved by every filed batch."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from ingest.sources.base import Cursor
from ingest.store.checkpoints import Checkpoints
from ingest.store.db import read_session, transaction
from ingest.store.models import Checkpoint


def _stored(engine: Engine) -> list[tuple[str, int | None, int | None, str | None]]:
    with read_session(engine) as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(Checkpoint.folder, Checkpoint.uidvalidity, Checkpoint.last_uid,
                   Checkpoint.last_error).order_by(Checkpoint.folder))]


def test_advance_moves_only_its_own_folder_and_clears_the_error(engine: Engine) -> None:
    inbox, other = Checkpoints(engine, "box", "INBOX"), Checkpoints(engine, "box", "Other")
    inbox.load()
    other.load()
    inbox.failed("the server went away")
    assert _stored(engine)[0][3] == "the server went away"
    inbox.advance(Cursor(7, 42))
    assert _stored(engine) == [("INBOX", 7, 42, None), ("Other", None, None, None)]


def test_advance_inside_a_batch_recreates_a_deleted_checkpoint(engine: Engine) -> None:
    checkpoints = Checkpoints(engine, "box", "INBOX")
    checkpoints.load()
    with transaction(engine) as session:
        session.execute(delete(Checkpoint))
    with transaction(engine) as session:
        checkpoints.advance_in(session, Cursor(3, 9))
    assert _stored(engine) == [("INBOX", 3, 9, None)]
