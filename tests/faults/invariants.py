"""The guarantees every fault test checks once the faults are over, in one place.

- every delivered message is recorded exactly once (by source identity and by Message-ID),
  none is quarantined, none is left in the INBOX, each is in the processed folder once;
- every request is decided at most once, by its first valid reply (in UID order), with one
  decision event; every reply has one response and one ``response.recorded`` event;
- every event went through the rules once (one outcome per event and rule), every outcome
  was delivered, and the receiver saw one Idempotency-Key per event and rule (repeats with
  the same key are allowed: delivery is at least once).

``problems(scene)`` lists what is wrong, each naming the message, request or outcome;
``outstanding(scene)`` says what a test is still waiting for before it checks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, func, select

from ingest.store.db import read_session
from ingest.store.models import (
    Event,
    Message,
    MessageStatus,
    Outcome,
    OutcomeStatus,
    Request,
    RequestStatus,
    Response,
)
from tests.faults.backlog import Backlog
from tests.faults.installation import HOOKS, PROCESSED
from tests.servers.http_receiver import HttpReceiver

DECISION_EVENTS = tuple(f"request.{status}" for status in RequestStatus)
SHOWN_PER_KIND = 10


class FaultServer(Protocol):
    """The test mail server a fault run delivers to and looks into (Dovecot, or Graph)."""

    def deliver(self, user: str, raw: bytes) -> object:
        """Deliver one message to ``user``'s inbox as an MTA would."""
        ...

    def deliver_many(self, user: str, messages: list[bytes]) -> int:
        """Put a backlog into ``user``'s inbox."""
        ...

    def list_folder(self, user: str, folder: str = ...) -> int:
        """How many messages ``folder`` (the inbox by default) holds."""
        ...


@dataclass(frozen=True)
class Scene:
    """Where a fault test's results are: the database, the mailbox and the receiver."""

    engine: Engine
    backlog: Backlog
    server: FaultServer
    user: str
    receiver: HttpReceiver
    note: str  # the seed and scale, so a failure can be replayed


def outstanding(scene: Scene) -> str | None:
    """What is not done yet (mail to record, events to run, outcomes to deliver), or None."""
    with read_session(scene.engine) as session:
        recorded = session.scalar(select(func.count()).select_from(Message)) or 0
        events = session.scalar(select(func.count()).select_from(Event)
                                .where(Event.processed_at.is_(None))) or 0
        undelivered = session.scalar(select(func.count()).select_from(Outcome)
                                     .where(Outcome.status != OutcomeStatus.DELIVERED)) or 0
    left = [f"{count} {what}" for count, what in (
        (len(scene.backlog.messages) - recorded, "messages to record"),
        (events, "events for the rules"), (undelivered, "outcomes to deliver")) if count]
    if not left:  # only then ask the server: each question is a doveadm process or a login
        waiting = scene.server.list_folder(scene.user)
        left = [f"{waiting} messages in the INBOX"] if waiting else []
    return ", ".join(left) or None


def problems(scene: Scene) -> list[str]:
    """Every broken guarantee, one sentence each."""
    return [problem for group in _problem_groups(scene) for problem in group]


def assert_invariants(scene: Scene, logs: str = "", extra: Iterable[str] = ()) -> None:
    """Fail with every broken guarantee (``extra`` too, and the logs) if there is one."""
    groups = [*_problem_groups(scene), list(extra)]
    count = sum(len(group) for group in groups)
    if count:
        listed = "\n".join(_shown(group) for group in groups if group)
        tail = "\n".join(logs.splitlines()[-80:])
        raise AssertionError(f"{count} broken guarantee(s) ({scene.note}):\n{listed}"
                             f"\n--- last log lines of the ackmail processes:\n{tail}")


def _problem_groups(scene: Scene) -> list[list[str]]:
    """The problems, one list per kind of guarantee."""
    with read_session(scene.engine) as session:
        messages = list(session.scalars(select(Message)))
        responses = list(session.scalars(select(Response)))
        requests = list(session.scalars(select(Request)))
        events = list(session.scalars(select(Event)))
        outcomes = list(session.scalars(select(Outcome)))
    return [_recorded_once(scene, messages), _mailbox_empty(scene),
            _decided_once(scene, messages, responses, requests, events),
            _ruled_once(events, outcomes), _delivered_once(scene, outcomes)]


def _shown(group: list[str], limit: int = SHOWN_PER_KIND) -> str:
    """One kind of problem: the first few, and how many more there are like them."""
    more = [f"  ... and {len(group) - limit} more like these"] if len(group) > limit else []
    return "\n".join([f"- {problem}" for problem in group[:limit]] + more)


def _repeated(values: Iterable[Any]) -> dict[Any, int]:
    return {value: n for value, n in Counter(values).items() if n > 1}


def _recorded_once(scene: Scene, messages: list[Message]) -> list[str]:
    planned = scene.backlog.by_message_id()
    found = [f"{key} is recorded {n} times" for key, n in
             _repeated(m.source_key for m in messages).items()]
    found += [f"message {mid} is recorded {n} times" for mid, n in
              _repeated(m.message_id_header for m in messages).items()]
    recorded = {m.message_id_header for m in messages}
    found += [f"message {mid} was delivered but never recorded"
              for mid in planned if mid not in recorded]
    found += [f"message {mid} is recorded but was never delivered"
              for mid in recorded if mid not in planned]
    found += [f"message {m.message_id_header} ({m.source_key}) was quarantined: {m.reason}"
              for m in messages if m.status == MessageStatus.QUARANTINED]
    return found


def _mailbox_empty(scene: Scene) -> list[str]:
    waiting = scene.server.list_folder(scene.user)
    filed = scene.server.list_folder(scene.user, PROCESSED)
    found = [f"{waiting} message(s) are still in the INBOX"] if waiting else []
    if filed != len(scene.backlog.messages):
        found.append(f"'{PROCESSED}' holds {filed} messages, not the "
                     f"{len(scene.backlog.messages)} delivered")
    return found


def _decided_once(scene: Scene, messages: list[Message], responses: list[Response],
                  requests: list[Request], events: list[Event]) -> list[str]:
    planned = scene.backlog.by_message_id()
    by_id = {m.id: m for m in messages}
    replies = [m for m in messages if planned.get(m.message_id_header or "") is not None
               and planned[m.message_id_header or ""].request_id is not None]
    found = [f"reply {mid} has {n} responses" for mid, n in _repeated(
        by_id[r.message_id].message_id_header for r in responses if r.message_id).items()]
    answered = {by_id[r.message_id].message_id_header for r in responses if r.message_id}
    found += [f"reply {m.message_id_header} ({m.status}: {m.reason}) has no response"
              for m in replies if m.message_id_header not in answered]
    recorded_events = Counter(e.message_id for e in events if e.type == "response.recorded")
    found += [f"reply {m.message_id_header} has {recorded_events[m.id]} response.recorded events"
              for m in replies if recorded_events[m.id] != 1]
    decisions = Counter(e.request_id for e in events if e.type in DECISION_EVENTS)
    for request in requests:
        first = _first_valid_reply(request.id, replies, planned)
        expected = planned[first.message_id_header or ""].decides if first else None
        decisive = [r for r in responses if r.request_id == request.id and r.decisive]
        deciders = [by_id[r.message_id].message_id_header for r in decisive if r.message_id]
        if (expected or RequestStatus.PENDING) != request.status:
            found.append(f"request #{request.id} is {request.status}, but its first valid reply "
                         f"{first.message_id_header if first else '(none)'} says {expected}")
        if decisions[request.id] != (0 if expected is None else 1):
            found.append(f"request #{request.id} has {decisions[request.id]} decision events")
        if first is not None and deciders != [first.message_id_header]:
            found.append(f"request #{request.id} was decided by {deciders or 'no reply'}, not by "
                         f"its first valid reply {first.message_id_header}")
    return found


def _first_valid_reply(request_id: int, replies: list[Message],
                       planned: dict[str, Any]) -> Message | None:
    valid = [m for m in replies if planned[m.message_id_header or ""].request_id == request_id
             and planned[m.message_id_header or ""].decides is not None]
    return min(valid, key=lambda m: m.uid or 0, default=None)


def _ruled_once(events: list[Event], outcomes: list[Outcome]) -> list[str]:
    found = [f"event #{e.id} ({e.type}) never went through the rules"
             for e in events if e.processed_at is None]
    found += [f"event #{event} has {n} outcomes for rule '{rule}'" for (event, rule), n in
              _repeated((o.event_id, o.rule) for o in outcomes).items()]
    hooked = {event: rule for rule, types in HOOKS.items() for event in types}
    with_outcome = {(o.event_id, o.rule) for o in outcomes}
    found += [f"event #{e.id} ({e.type}) has no outcome for rule '{hooked[e.type]}'"
              for e in events if e.type in hooked and (e.id, hooked[e.type]) not in with_outcome]
    return found


def _delivered_once(scene: Scene, outcomes: list[Outcome]) -> list[str]:
    found = [f"outcome #{o.id} (rule '{o.rule}', event #{o.event_id}) is {o.status} after "
             f"{o.attempts} attempt(s): {o.last_error}"
             for o in outcomes if o.status != OutcomeStatus.DELIVERED]
    keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    received = scene.receiver.accepted()
    for request in received:
        keys[request.path, _event_of(request.json())].add(request.idempotency_key or "")
        if not request.signature_ok:
            found.append(f"webhook {request.path} key {request.idempotency_key} had a bad "
                         "signature")
    found += [f"{event} reached {path} with {len(ids)} idempotency keys {sorted(ids)}"
              for (path, event), ids in keys.items() if len(ids) > 1]
    seen = {request.idempotency_key for request in received}
    found += [f"outcome #{o.id} (rule '{o.rule}', event #{o.event_id}) is {o.status} but the "
              "receiver never accepted it" for o in outcomes if str(o.id) not in seen]
    return found


def _event_of(payload: dict[str, Any]) -> str:
    """One event, whichever outcome carried it: its type and the ids it is about."""
    ids = [f"{part} #{(payload.get(part) or {}).get('id')}"
           for part in ("request", "response", "message") if payload.get(part)]
    return f"{payload.get('event')} ({', '.join(ids)})"
