"""The mail the fault tests deliver: pending requests, and a backlog that answers some of them.

About a quarter of the messages are replies to requests: most from a responder with their
own token (approve or reject: the first of those decides the request), some from an
outsider holding a responder's token, some with no clear answer; neither of the last two
may decide anything. The rest answer nothing. The plan remembers every message, so the
invariant checker knows what must be in the database afterwards.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ingest.store.models import RequestStatus
from tests.sources.mail import reply, request_for, unrelated

RESPONDERS = ("alice@example.test", "carol@example.test")
OUTSIDER = "mallory@example.test"
MESSAGES_PER_REQUEST = 10
REPLY_SHARE = 0.25
ANSWERS = {"Approved, go ahead.": RequestStatus.APPROVED, "Rejected.": RequestStatus.REJECTED}
UNCLEAR = "Thanks, I will have a look tomorrow."
_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE)


@dataclass(frozen=True)
class Planned:
    """One delivered message; ``decides`` is what it makes of its request if it comes first."""

    message_id: str
    raw: bytes = field(repr=False)
    request_id: int | None = None
    decides: RequestStatus | None = None


@dataclass(frozen=True)
class PendingRequest:
    """A registered request and each responder's token."""

    id: int
    tokens: dict[str, str]


@dataclass
class Backlog:
    """Everything delivered so far, in delivery order."""

    requests: list[PendingRequest]
    messages: list[Planned] = field(default_factory=list)

    def plan(self, rng: random.Random, count: int) -> list[Planned]:
        """``count`` more messages (kept in the plan); the caller delivers them."""
        batch = [self._reply(rng) if rng.random() < REPLY_SHARE else _unrelated()
                 for _ in range(count)]
        self.messages.extend(batch)
        return batch

    def _reply(self, rng: random.Random) -> Planned:
        request = rng.choice(self.requests)
        responder = rng.choice(list(request.tokens))
        roll = rng.random()
        if roll < 0.15:  # a forwarded request: the token is not the sender's
            raw = reply(request.tokens[responder], body="Approved.", sender=OUTSIDER)
            return Planned(_message_id(raw), raw, request.id)
        if roll < 0.30:
            raw = reply(request.tokens[responder], body=UNCLEAR, sender=responder)
            return Planned(_message_id(raw), raw, request.id)
        body = rng.choice(list(ANSWERS))
        raw = reply(request.tokens[responder], body=body, sender=responder)
        return Planned(_message_id(raw), raw, request.id, ANSWERS[body])

    def by_message_id(self) -> dict[str, Planned]:
        return {planned.message_id: planned for planned in self.messages}


def register_requests(engine: Engine, messages: int) -> Backlog:
    """One pending request per MESSAGES_PER_REQUEST messages, each with both responders."""
    requests = []
    for n in range(max(1, messages // MESSAGES_PER_REQUEST)):
        registered = request_for(engine, *RESPONDERS, ref=f"FAULT-{n}")
        requests.append(PendingRequest(registered.id,
                                       {r.address: r.token for r in registered.recipients}))
    return Backlog(requests)


def _unrelated() -> Planned:
    raw = unrelated("fault ")
    return Planned(_message_id(raw), raw)


def _message_id(raw: bytes) -> str:
    found = _MESSAGE_ID.search(raw)
    assert found is not None, "a test message without a Message-ID"
    return found.group(1).decode()
