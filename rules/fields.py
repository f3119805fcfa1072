"""The events the rules engine sees and the fields each one carries, as data.

An event is a type plus its stored JSON payload (``ingest.store.events.add_event``);
rules name payload fields by dotted path (``request.ref``, ``response.intent``).
The tables below let the loader refuse a misspelt event type or field at start,
instead of a rule that silently never fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from ingest.store.events import MessagePayload, RequestPayload, ResponsePayload

# Fields of each payload section: the typed contract ingest.store.events writes.
SECTIONS: Mapping[str, tuple[str, ...]] = {
    "request": tuple(RequestPayload.__annotations__),
    "response": tuple(ResponsePayload.__annotations__),
    "message": tuple(MessagePayload.__annotations__),
}
# Top-level fields of the authentication events (auth.failed, auth.expiring).
AUTH_FIELDS = ("mailbox", "cause", "fix", "command")

# Event type -> the sections (or top-level fields) its payload carries.
EVENTS: Mapping[str, tuple[str, ...]] = {
    "request.approved": ("request", "response", "message"),  # a decisive approve
    "request.rejected": ("request", "response", "message"),  # a decisive reject
    "request.acknowledged": ("request", "response", "message"),  # an alert acknowledged
    "request.expired": ("request",),  # the expiry sweep, no reply involved
    "response.recorded": ("request", "response", "message"),  # every reply, decisive or not
    "message.unmatched": ("message",),  # a message that answers no request
    "message.quarantined": ("message",),  # a message that could not be processed
    "auth.failed": AUTH_FIELDS,  # a mailbox cannot sign in
    "auth.expiring": AUTH_FIELDS,  # a client secret or grant is about to lapse
}

# Short names a rule may use instead of the full path (SPEC: when = { ref = "CR-*" }).
ALIASES: Mapping[str, str] = {
    "ref": "request.ref",
    "intent": "response.intent",
    "responder": "response.address",
}

_MISSING = object()


def event_fields(event_type: str) -> frozenset[str]:
    """Every dotted path an event of ``event_type`` carries, ``event`` included."""
    paths = {"event"}
    for part in EVENTS.get(event_type, ()):
        if part in SECTIONS:
            paths.update(f"{part}.{name}" for name in SECTIONS[part])
        else:
            paths.add(part)
    return frozenset(paths)


def fields_of(event_types: Iterable[str]) -> frozenset[str]:
    """The fields any of ``event_types`` carries (what a rule on them may name)."""
    return frozenset().union(*(event_fields(t) for t in event_types))


def expand_event_patterns(pattern: str) -> list[str]:
    """The known event types a name or glob (``request.*``) stands for, in table order."""
    return [name for name in EVENTS if fnmatchcase(name, pattern)]


def canonical(path: str) -> str:
    """The full dotted path for ``path`` (aliases resolved)."""
    return ALIASES.get(path, path)


def lookup(payload: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted ``path`` in ``payload``; a null section counts as absent."""
    value: Any = payload
    for part in canonical(path).split("."):
        if not isinstance(value, Mapping):
            return False, None
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return False, None
    return True, value
