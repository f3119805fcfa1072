"""Dialect-aware query pieces from ingest.store.db."""

from __future__ import annotations

from sqlalchemy import Engine, select

from ingest.store.db import one_of, read_session, transaction
from ingest.store.models import Checkpoint


def test_one_of_finds_what_in_finds_with_one_array_on_postgresql(
    engine: Engine,
) -> None:
    folders = ["INBOX", "it's \"quoted\"", "Ünïcode", "other"]
    with transaction(engine) as session:
        session.add_all(Checkpoint(mailbox="box", folder=folder, state={}) for folder in folders)
    wanted = [folders[1], folders[2], "absent"]
    with read_session(engine) as session:
        query = select(Checkpoint.folder).where(one_of(session, Checkpoint.folder, wanted))
        found = set(session.scalars(query))
        assert found == set(session.scalars(
            select(Checkpoint.folder).where(Checkpoint.folder.in_(wanted))))
        assert found == {folders[1], folders[2]}
        assert list(session.scalars(select(Checkpoint.folder).where(
            one_of(session, Checkpoint.folder, [])))) == []
        sql = str(query.compile(session.get_bind()))
    assert ("= ANY (" in sql) == (engine.dialect.name == "postgresql"), sql
