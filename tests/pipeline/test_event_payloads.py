"""Every payload the pipeline writes keeps the typed contract (both dialects)."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema
from sqlalchemy import Engine, select

from ingest.register import RegisteredRequest
from ingest.store.db import read_session
from ingest.store.event_schema import event_schema
from ingest.store.events import PAYLOAD_VERSION
from ingest.store.models import Event, Response
from tests.pipeline.support import BOB, process, reply, source


def test_recorded_events_validate_against_the_schema(
        engine: Engine, create: Callable[..., RegisteredRequest]) -> None:
    token = create().recipients[0].token
    process(engine, source(1), reply(token))
    process(engine, source(2), reply("ZZZZ-ZZZZ", sender=BOB))  # unmatched
    process(engine, source(3), b"not a message at all")  # quarantined
    with read_session(engine) as session:
        stored = list(session.scalars(select(Event).order_by(Event.id)))
    assert {event.type for event in stored} >= {
        "response.recorded", "request.approved", "message.unmatched", "message.quarantined"}
    for event in stored:
        jsonschema.validate(event.payload, event_schema(),
                            cls=jsonschema.Draft202012Validator)
        assert event.payload["version"] == PAYLOAD_VERSION
        assert event.payload["event"] == event.type


def test_an_instruction_with_the_decision_is_the_response_s_note_and_in_its_events(
        engine: Engine, create: Callable[..., RegisteredRequest]) -> None:
    first, second = create(), create()
    process(engine, source(1), reply(first.recipients[0].token,
                                     body="Yes, go ahead, but please tell the On-Call team."))
    process(engine, source(2), reply(second.recipients[0].token, body="Approved."))
    with read_session(engine) as session:
        notes = dict(session.execute(select(Response.request_id, Response.note)).all())
        stored = session.scalars(select(Event).where(Event.type == "request.approved")
                                 .order_by(Event.id)).all()
        payloads = [event.payload["response"] for event in stored]
    assert notes == {first.id: "please tell the On-Call team", second.id: None}
    assert [payload["intent"] for payload in payloads] == ["approve", "approve"]
    assert [payload["note"] for payload in payloads] == ["please tell the On-Call team", None]
