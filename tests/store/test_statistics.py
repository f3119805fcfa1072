"""A backlog recorded into a new PostgreSQL database gets planner statistics on the way."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ingest.sources.base import SourceRef
from ingest.store.db import read_session, transaction
from ingest.store.models import Base, Message, MessageStatus
from ingest.store.recorder import RecordedIndex
from ingest.store.statistics import FIRST_AT, PlannerStatistics
from tests.store.support import insert_rows_with_ids

MESSAGES = Base.metadata.tables[Message.__tablename__]


def _record(engine: Engine, count: int, first: int = 0) -> None:
    rows = [{"mailbox": "approvals", "source_key": f"imap:INBOX:1:{n}", "content_hash": f"{n:064x}",
             "status": MessageStatus.IGNORED, "reasons": []} for n in range(first, first + count)]
    with transaction(engine) as session:
        insert_rows_with_ids(session.connection(), MESSAGES, rows)


def _reltuples(engine: Engine) -> float:
    with engine.connect() as connection:
        return float(connection.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")) or 0)


def test_statistics_follow_a_backlog_on_postgresql(engine: Engine) -> None:
    statistics = PlannerStatistics(engine)
    if engine.dialect.name != "postgresql":
        assert not statistics.enabled  # SQLite's planner needs no ANALYZE for this
        return
    _record(engine, FIRST_AT - 1)
    statistics.recorded(FIRST_AT - 1)
    assert _reltuples(engine) < 0, "analyzed before the first threshold"  # never analyzed
    _record(engine, 1, first=FIRST_AT - 1)
    statistics.recorded(1)
    assert _reltuples(engine) == FIRST_AT
    _record(engine, FIRST_AT, first=FIRST_AT)
    statistics.recorded(FIRST_AT - 1)
    assert _reltuples(engine) == FIRST_AT, "analyzed again before the table doubled"
    statistics.recorded(1)
    assert _reltuples(engine) == 2 * FIRST_AT


def test_the_lookup_still_finds_what_is_recorded(engine: Engine) -> None:
    _record(engine, 3)
    PlannerStatistics(engine).recorded(FIRST_AT)
    with read_session(engine) as session:
        index = RecordedIndex(session, [(SourceRef("approvals", "imap:INBOX:1:2"), "x")])
        found = index.find(SourceRef("approvals", "imap:INBOX:1:2"), "x", None)
    assert found is not None and found.source_key == "imap:INBOX:1:2"
