"""A request's timeline: everything that happened to it, oldest first, with the rules fired."""

from __future__ import annotations

from sqlalchemy import Engine, select

from ingest.store.db import read_session, transaction
from ingest.store.events import add_event
from ingest.store.models import Message
from ingest.web.timeline import EntryKind, load_timeline
from tests.web.conftest import ALICE, BOB, Filled


def test_the_timeline_tells_the_story_in_order(engine: Engine, filled: Filled) -> None:
    with read_session(engine) as session:
        timeline = load_timeline(session, filled.approval_id)
        assert timeline is not None
        assert [r.address for r in timeline.recipients] == [ALICE, BOB]
        story = [(e.kind, getattr(e.item, "type", None)) for e in timeline.entries]
        outcomes = {getattr(e.item, "type", ""): [o.id for o in e.outcomes]
                    for e in timeline.entries}
        times = [e.at for e in timeline.entries]
    assert story == [
        (EntryKind.CREATED, None),
        (EntryKind.MESSAGE, None),
        (EntryKind.RESPONSE, None),
        (EntryKind.EVENT, "response.recorded"),
        (EntryKind.EVENT, "request.approved"),
    ]
    assert outcomes["request.approved"] == [filled.outcome_id]
    assert outcomes["response.recorded"] == []
    assert times == sorted(times)


def test_events_about_its_messages_belong_to_it(engine: Engine, filled: Filled) -> None:
    with transaction(engine) as session:
        message = session.scalars(
            select(Message).where(Message.request_id == filled.alert_id)).one()
        add_event(session, "message.noted", message=message)
    with read_session(engine) as session:
        timeline = load_timeline(session, filled.alert_id)
        assert timeline is not None
        types = [getattr(e.item, "type", None) for e in timeline.entries
                 if e.kind is EntryKind.EVENT]
    assert types == ["response.recorded", "request.acknowledged", "message.noted"]


def test_no_timeline_for_an_unknown_request(engine: Engine) -> None:
    with read_session(engine) as session:
        assert load_timeline(session, 424242) is None
