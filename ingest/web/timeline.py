"""A request's story in time order: created, each message read for it, each response, each
event with its rule trace (which rules fired, which did not and why) and the outcomes it led to.

Rows are the ORM objects themselves; the caller renders them inside the same session.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ingest.store.models import Event, Message, Outcome, Recipient, Request, Response


class EntryKind(enum.StrEnum):
    CREATED = "created"
    MESSAGE = "message"
    RESPONSE = "response"
    EVENT = "event"


@dataclass(frozen=True)
class TraceStep:
    """One rule's verdict on an event, as the rules engine stored it in ``events.rule_trace``."""

    rule: str
    fired: bool
    reason: str


@dataclass(frozen=True)
class Entry:
    """One line of the timeline; ``outcomes`` and ``trace`` only for events.

    ``trace`` is None when the event has no stored trace (not yet through the rules).
    """

    at: datetime
    kind: EntryKind
    item: Request | Message | Response | Event
    outcomes: tuple[Outcome, ...] = ()
    trace: tuple[TraceStep, ...] | None = None


def rule_trace(event: Event) -> tuple[TraceStep, ...] | None:
    """The event's stored rule trace, each step typed; a step of another shape is skipped."""
    if not isinstance(event.rule_trace, list):
        return None
    return tuple(
        TraceStep(str(step.get("rule", "")), step.get("fired") is True, str(step.get("reason", "")))
        for step in event.rule_trace if isinstance(step, dict)
    )


@dataclass(frozen=True)
class Timeline:
    """A request, its responders, and what happened to it, oldest first."""

    request: Request
    recipients: tuple[Recipient, ...]
    entries: tuple[Entry, ...] = field(default=())


def load_timeline(session: Session, request_id: int) -> Timeline | None:
    """The request's timeline, or None when there is no such request."""
    request = session.get(Request, request_id)
    if request is None:
        return None
    recipients = session.scalars(
        select(Recipient).where(Recipient.request_id == request_id).order_by(Recipient.id)
    ).all()
    responses = session.scalars(
        select(Response).where(Response.request_id == request_id).order_by(Response.id)
    ).all()
    answered = [r.message_id for r in responses if r.message_id is not None]
    messages = session.scalars(
        select(Message)
        .where(or_(Message.request_id == request_id, Message.id.in_(answered)))
        .order_by(Message.id)
    ).all()
    events = _events(session, request_id, [m.id for m in messages])
    outcomes = _outcomes(session, [e.id for e in events])
    entries = [
        Entry(request.created_at, EntryKind.CREATED, request),
        *(Entry(m.recorded_at, EntryKind.MESSAGE, m) for m in messages),
        *(Entry(r.created_at, EntryKind.RESPONSE, r) for r in responses),
        *(Entry(e.created_at, EntryKind.EVENT, e, outcomes.get(e.id, ()), rule_trace(e))
          for e in events),
    ]
    # Message, response and events of one reply share a transaction (and a timestamp):
    # the stable sort keeps them in the pipeline's order.
    entries.sort(key=lambda entry: entry.at)
    return Timeline(request, tuple(recipients), tuple(entries))


def _events(session: Session, request_id: int, message_ids: Sequence[int]) -> list[Event]:
    # An event about a response always names its request too (ingest.store.events.add_event),
    # so the request and its messages find every event, each through an index.
    query = select(Event).where(
        or_(Event.request_id == request_id, Event.message_id.in_(message_ids))
    )
    return list(session.scalars(query.order_by(Event.id)))


def _outcomes(session: Session, event_ids: Sequence[int]) -> dict[int, tuple[Outcome, ...]]:
    found: dict[int, list[Outcome]] = {}
    if event_ids:
        query = select(Outcome).where(Outcome.event_id.in_(event_ids)).order_by(Outcome.id)
        for outcome in session.scalars(query):
            found.setdefault(outcome.event_id, []).append(outcome)
    return {event_id: tuple(items) for event_id, items in found.items()}
