"""A batch of messages in one transaction: the same results as one at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from ingest.pipeline import Arrival, handle, process_batch
from ingest.register import RegisteredRequest
from ingest.store.db import read_session
from ingest.store.models import (
    Event,
    Message,
    MessageStatus,
    RawMessage,
    Request,
    RequestStatus,
    Response,
)
from ingest.store.recorder import RecordedIndex
from tests.pipeline.support import ALICE, BOB, CONFIG, events, reply, request_status, source
from tests.sources.mail import unrelated


def batch(engine: Engine, *raws: bytes, first: int = 1) -> list[MessageStatus | None]:
    arrivals = [Arrival(source(first + n), raw) for n, raw in enumerate(raws)]
    return [result.status for result in process_batch(engine, CONFIG, arrivals)]


def test_a_batch_records_each_message_with_its_bytes_and_events(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    token = create(ALICE).recipients[0].token
    results = process_batch(engine, CONFIG, [Arrival(source(1), unrelated()),
                                             Arrival(source(2), reply(token))])
    assert [r.status for r in results] == [MessageStatus.IGNORED, MessageStatus.PROCESSED]
    assert results[1].decisive and all(r.message_id for r in results)
    assert events(engine) == ["message.unmatched", "response.recorded", "request.approved"]
    with read_session(engine) as session:
        kept = session.scalars(select(RawMessage.message_id).order_by(RawMessage.message_id))
        assert list(kept) == [r.message_id for r in results]
        response = session.scalars(select(Response)).one()
        assert response.message_id == results[1].message_id
        decided = session.get_one(Request, response.request_id)
        assert (decided.status, decided.decided_at) == (RequestStatus.APPROVED,
                                                        response.received_at)


def test_replies_to_one_request_in_one_batch_are_decided_in_order(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    request = create(ALICE, BOB, policy="all")
    alice, bob = (recipient.token for recipient in request.recipients)
    batch(engine, reply(alice), reply(bob, sender=BOB), reply(alice, body="Rejected."))
    assert request_status(engine, request.id) == RequestStatus.APPROVED
    with read_session(engine) as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        # Each event shows the request as its own message left it, not as the batch did.
        assert [(e.type, e.payload["request"]["status"]) for e in rows] == [
            ("response.recorded", "pending"),
            ("response.recorded", "approved"),
            ("request.approved", "approved"),
            ("response.recorded", "approved"),
        ]
        counted = session.scalars(select(Response.counted).order_by(Response.id))
        assert list(counted) == [True, True, False]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends while the block runs."""
    sent: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_a_batch_of_answers_costs_the_same_queries_however_many_requests_it_answers(
    engine: Engine, create: Callable[..., RegisteredRequest]
) -> None:
    few = [create(ALICE).recipients[0].token for _ in range(2)]
    many = [create(ALICE, BOB, policy="all").recipients[0].token for _ in range(12)]
    # Earlier answers that did not count ("Maybe."): deciding never needs to read them.
    unsure = ("Maybe.", "Not sure yet.", "Let me check.")
    batch(engine, *(reply(token, body=body) for token in many for body in unsure), first=100)
    with statements(engine) as small:
        assert batch(engine, *(reply(token) for token in few)) == [MessageStatus.PROCESSED] * 2
    with statements(engine) as large:
        results = batch(engine, *(reply(token, body=body) for token in many
                                  for body in ("Approved.", "Approved, thanks.")), first=200)
    assert results == [MessageStatus.PROCESSED] * 24
    # The lookups for the whole batch (recorded, recipients with the locks, counted answers),
    # not one per request or per answer.
    assert len(large) == len(small)
    with read_session(engine) as session:
        counted = session.scalar(select(func.count()).select_from(Response)
                                 .where(Response.counted.is_(True)))
    assert counted == 2 + 12  # alice's first approval of each; her second is refused


def test_the_same_message_twice_in_a_batch_is_recorded_once(engine: Engine) -> None:
    raw = unrelated()
    assert batch(engine, raw, raw) == [MessageStatus.IGNORED, None]
    assert batch(engine, raw, first=1) == [None]  # and again in a later batch
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_message_that_breaks_the_batch_is_quarantined_alone(
    engine: Engine, create: Callable[..., RegisteredRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = create(ALICE).recipients[0].token
    calls = iter(range(100))

    def decide_once_then_fail(*args: object) -> object:
        # The batch's try fails; the one-at-a-time retry then decides normally.
        if next(calls) == 0:
            raise RuntimeError("simulated bug")
        return original(*args)

    original = handle.decide
    monkeypatch.setattr(handle, "decide", decide_once_then_fail)
    assert batch(engine, unrelated(), reply(token), unrelated()) == [
        MessageStatus.IGNORED, MessageStatus.PROCESSED, MessageStatus.IGNORED]
    assert events(engine) == ["message.unmatched", "response.recorded", "request.approved",
                              "message.unmatched"]


def test_a_message_recorded_by_another_worker_meanwhile_is_a_duplicate(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raw = unrelated()
    assert batch(engine, raw) == [MessageStatus.IGNORED]
    # Another worker's commit lands between this batch's lookup and its insert: the index
    # cannot see it, the unique constraint refuses the row, and the batch is redone.
    looked_up = iter([True])
    real_find = RecordedIndex.find

    def blind_once(self: RecordedIndex, *args: object) -> Message | None:
        if next(looked_up, False):
            return None
        return real_find(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(RecordedIndex, "find", blind_once)
    caplog.set_level(logging.INFO, logger="ingest.pipeline")
    assert batch(engine, raw, unrelated(), first=1) == [None, MessageStatus.IGNORED]
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 2
    # Told apart from a bug: the bulk INSERT's refusal is the database's IntegrityError.
    assert "another worker recorded one of 2 messages" in caplog.text
    assert "failed; processing them one at a time" not in caplog.text
