"""A request's timeline: everything that happened to it, oldest first, with the rules fired."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from ingest.store.db import read_session, transaction
from ingest.store.events import add_event
from ingest.store.models import Event, Message
from ingest.web.timeline import EntryKind, TraceStep, load_timeline, rule_trace
from tests.web.conftest import ALICE, BOB, Filled


def test_the_timeline_tells_the_story_in_order(engine: Engine, filled: Filled) -> None:
    with read_session(engine) as session:
        timeline = load_timeline(session, filled.approval_id)
        assert timeline is not None
        assert [r.address for r in timeline.recipients] == [ALICE, BOB]
        story = [(e.kind, getattr(e.item, "type", None)) for e in timeline.entries]
        outcomes = {getattr(e.item, "type", ""): [o.rule for o in e.outcomes]
                    for e in timeline.entries}
        traces = {getattr(e.item, "type", ""): e.trace for e in timeline.entries}
        times = [e.at for e in timeline.entries]
    reply = [(EntryKind.MESSAGE, None), (EntryKind.RESPONSE, None),
             (EntryKind.EVENT, "response.recorded")]
    assert story == [(EntryKind.CREATED, None), *reply, (EntryKind.EVENT, "request.approved"),
                     *reply]  # Bob's approval, after the decision
    assert outcomes["request.approved"] == ["log-approvals", "tell-<i>changes</i>"]
    assert outcomes["response.recorded"] == []
    trace = traces["request.approved"]
    assert trace is not None
    assert [(step.rule, step.fired) for step in trace] == [
        ("log-approvals", True), ("page-on-alerts", False), ("rejections-only", False)]
    assert trace[2].reason == "listens to request.rejected, not request.approved"
    assert traces[""] is None  # created, message and response entries have no trace
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("stored", "steps"),
    [
        (None, None),
        ({"rule": "r"}, None),
        ([], ()),
        ([{"rule": "r", "fired": True, "reason": "why"}, "junk", {"fired": "yes"}],
         (TraceStep("r", True, "why"), TraceStep("", False, ""))),
    ],
)
def test_a_stored_trace_of_another_shape_shows_what_it_can(
    stored: object, steps: tuple[TraceStep, ...] | None
) -> None:
    assert rule_trace(Event(type="request.approved", payload={}, rule_trace=stored)) == steps


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
