"""Bulk INSERTs (one chained statement on PostgreSQL, executemany on SQLite) store what the
ORM would store, and give each keyed row its id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from ingest.parse.base import MessageKind
from ingest.store.bulk import BulkTable, BulkWrite
from ingest.store.db import read_session, transaction
from ingest.store.models import Base, Event, Message, MessageStatus, RawMessage
from ingest.timeutil import utcnow
from tests.store.support import KeyedRow, insert_rows, insert_rows_with_ids

MESSAGES = Base.metadata.tables[Message.__tablename__]
RAW = Base.metadata.tables[RawMessage.__tablename__]
EVENTS = Base.metadata.tables[Event.__tablename__]
# Every kind of value the pipeline writes: text with quotes, tabs and backslashes (COPY's
# escapes), non-ASCII, None, booleans, big integers, enums, JSON lists and aware times.
ROWS = [
    {"mailbox": "approvals", "source_key": f"imap:INBOX:7:{n}", "folder": "INBOX",
     "uidvalidity": 2**40 + n, "uid": n, "uidl": None, "filename": None,
     "message_id_header": f"<m{n}@example.test>", "content_hash": f"{n:064x}", "size": 2500 + n,
     "sender": "zoë@example.test" if n % 2 else None, "sender_verified": bool(n % 2) or None,
     "subject": 'Re: "quoted"\ttab \\ backslash\nline' if n == 1 else f"Re: {n}",
     "kind": MessageKind.REPLY if n % 2 else None, "status": MessageStatus.IGNORED,
     "reason": "why, with 'quotes'", "reasons": ["one", "twö", {"nested": [n]}],
     "request_id": None,
     "received_at": datetime(2026, 11, 2, 10, n, tzinfo=UTC) + timedelta(microseconds=n)}
    for n in range(1, 6)
]


def _stored(engine: Engine, ids: list[int]) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        rows = session.execute(select(MESSAGES).where(MESSAGES.c.id.in_(ids))
                               .order_by(MESSAGES.c.id)).mappings().all()
    return [{key: value for key, value in row.items() if key not in ("id", "recorded_at")}
            for row in rows]


def test_rows_come_back_as_a_core_insert_stores_them(engine: Engine) -> None:
    before = utcnow()
    with transaction(engine) as session:
        bulk_ids = insert_rows_with_ids(session.connection(), MESSAGES, ROWS)
    core_rows = [{**row, "source_key": row["source_key"] + "-core"} for row in ROWS]
    with transaction(engine) as session:
        core_ids = list(session.connection().scalars(
            insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True), core_rows))
    bulk, core = _stored(engine, bulk_ids), _stored(engine, core_ids)
    assert [row["source_key"] for row in bulk] == [row["source_key"] for row in ROWS]
    assert bulk == [{**row, "source_key": row["source_key"][:-5]} for row in core]
    assert bulk[0]["received_at"] == ROWS[0]["received_at"]
    with read_session(engine) as session:  # the column default, applied once per call
        recorded = session.scalars(select(MESSAGES.c.recorded_at)
                                   .where(MESSAGES.c.id.in_(bulk_ids))).all()
    assert len(set(recorded)) == 1 and before <= recorded[0] <= utcnow()


def test_ids_are_new_distinct_and_in_row_order(engine: Engine) -> None:
    with transaction(engine) as session:
        first = insert_rows_with_ids(session.connection(), MESSAGES, ROWS[:2])
        second = insert_rows_with_ids(session.connection(), MESSAGES, ROWS[2:])
        # The ORM's own inserts still get fresh ids: the sequence moved past the bulk ones.
        orm = Message(**{**ROWS[0], "source_key": "orm"})
        session.add(orm)
        session.flush()
    ids = [*first, *second, orm.id]
    assert len(set(ids)) == len(ids)
    with read_session(engine) as session:
        keys = {row_id: key for row_id, key in session.execute(
            select(MESSAGES.c.id, MESSAGES.c.source_key))}
    assert [keys[row_id] for row_id in first + second] == [row["source_key"] for row in ROWS]


def test_bytes_and_json_payloads_round_trip(engine: Engine) -> None:
    raw = bytes(range(256)) + b"\\\t\n\r" * 4
    with transaction(engine) as session:
        connection = session.connection()
        (message_id,) = insert_rows_with_ids(connection, MESSAGES, ROWS[:1])
        insert_rows(connection, RAW, [{"message_id": message_id, "raw": raw}])
        insert_rows(connection, EVENTS, [
            {"type": "message.unmatched", "request_id": None, "response_id": None,
             "message_id": message_id, "mailbox": "approvals",
             "payload": {"text": "a\\b\t\"c\"\nd", "n": [1, 2.5, None, True]}}])
    with read_session(engine) as session:
        assert session.scalar(select(RAW.c.raw)) == raw
        event = session.execute(select(EVENTS)).mappings().one()
    assert event["payload"] == {"text": "a\\b\t\"c\"\nd", "n": [1, 2.5, None, True]}
    assert event["created_at"] is not None and event["processed_at"] is None


def test_a_failed_bulk_insert_rolls_back_with_its_transaction(engine: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(engine) as session:
        insert_rows_with_ids(session.connection(), MESSAGES, ROWS)
        session.add(Message(**ROWS[0]))  # the same source identity again
        session.flush()
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MESSAGES)) == 0


def test_none_in_a_json_column_is_stored_as_a_core_insert_stores_it(engine: Engine) -> None:
    row = {"type": "t", "request_id": None, "response_id": None, "message_id": None,
           "mailbox": None, "payload": {}, "rule_trace": None}
    with transaction(engine) as session:
        insert_rows(session.connection(), EVENTS, [row])
        session.connection().execute(insert(EVENTS), [row])
    with read_session(engine) as session:
        stored = session.execute(select(EVENTS.c.rule_trace, func.coalesce(
            func.cast(EVENTS.c.rule_trace, MESSAGES.c.reason.type), "SQL NULL"))
            .order_by(EVENTS.c.id)).all()
    assert stored[0] == stored[1], stored


def _raw_by_message(engine: Engine) -> dict[int, bytes]:
    with read_session(engine) as session:
        return dict(session.execute(select(RAW.c.message_id, RAW.c.raw)).all())


def test_one_write_numbers_parents_and_children_name_them(engine: Engine) -> None:
    parents = [KeyedRow(row) for row in ROWS]
    with transaction(engine) as session:
        (BulkWrite()
         .keyed(BulkTable(MESSAGES), parents)
         .rows(BulkTable(RAW), lambda: [{"message_id": p.id, "raw": f"{p.id}".encode()}
                                         for p in parents])
         .rows(BulkTable(EVENTS), [])  # an empty part writes nothing
         .run(session.connection()))
    ids = [parent.id for parent in parents if parent.id is not None]
    assert len(set(ids)) == len(ids) == len(parents)
    assert [row["source_key"] for row in _stored(engine, ids)] == \
        [row["source_key"] for row in ROWS]
    assert _raw_by_message(engine) == {row_id: f"{row_id}".encode() for row_id in ids}


def test_ids_are_right_after_gaps_and_a_deleted_last_row(engine: Engine) -> None:
    with transaction(engine) as session:
        first = insert_rows_with_ids(session.connection(), MESSAGES, ROWS[:3])
        session.connection().execute(MESSAGES.delete().where(
            MESSAGES.c.id.in_([first[1], first[2]])))
    with transaction(engine) as session:
        later = insert_rows_with_ids(session.connection(), MESSAGES, ROWS[3:])
    with read_session(engine) as session:
        keys = dict(session.execute(select(MESSAGES.c.id, MESSAGES.c.source_key)).all())
    assert [keys[row_id] for row_id in later] == [row["source_key"] for row in ROWS[3:]]
    assert sorted(keys) == sorted([first[0], *later])


def test_a_child_naming_no_parent_fails_the_whole_write(engine: Engine) -> None:
    parents = [KeyedRow(row) for row in ROWS[:2]]
    with pytest.raises(IntegrityError), transaction(engine) as session:
        (BulkWrite()
         .keyed(BulkTable(MESSAGES), parents)
         .rows(BulkTable(RAW), [{"message_id": 10**9, "raw": b"orphan"}])
         .run(session.connection()))
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MESSAGES)) == 0
    assert _raw_by_message(engine) == {}


def test_updates_go_with_the_inserts_and_change_only_the_named_rows(engine: Engine) -> None:
    with transaction(engine) as session:
        ids = insert_rows_with_ids(session.connection(), MESSAGES, ROWS)
    when = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    changes = [{"id": ids[0], "status": MessageStatus.QUARANTINED, "received_at": when},
               {"id": ids[2], "status": MessageStatus.PROCESSED, "received_at": None}]
    with transaction(engine) as session:
        (BulkWrite()
         .updates(BulkTable(MESSAGES), changes)
         .rows(BulkTable(RAW), [{"message_id": ids[0], "raw": b"kept"}])
         .run(session.connection()))
    stored = _stored(engine, ids)
    assert [(row["status"], row["received_at"]) for row in stored] == [
        (MessageStatus.QUARANTINED, when), (ROWS[1]["status"], ROWS[1]["received_at"]),
        (MessageStatus.PROCESSED, None), *((row["status"], row["received_at"]) for row in ROWS[3:])]
    assert [row["source_key"] for row in stored] == [row["source_key"] for row in ROWS]
    assert _raw_by_message(engine) == {ids[0]: b"kept"}
