"""Every payload the pipeline writes keeps the typed contract (both dialects)."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema
from sqlalchemy import Engine, select

from ingest.register import RegisteredRequest
from ingest.store.db import read_session
from ingest.store.event_schema import event_schema
from ingest.store.events import PAYLOAD_VERSION
from ingest.store.models import Event
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
