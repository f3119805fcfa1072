"""``email``: a templated notification through ``[smtp]`` (and its backup).

Recipients are addresses or templates such as ``${response.address}`` (the
responder). Loop guards: mail addressed from the event's own fields is never
sent in answer to an automatic reply, a bounce, a receipt or ackmail's own mail,
and every address gets at most ``max_per_hour`` notifications (counted from the
outbox). Every notification says ``Auto-Submitted: auto-replied`` (RFC 3834).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from ingest.errors import PermanentError
from ingest.outgoing.smtp import NOTIFICATION_HEADERS, OWN_MESSAGE_ID_PREFIX, Mailer, build_message
from ingest.timeutil import utcnow
from rules.base import ActionEnvironment, Delivery
from rules.fields import lookup
from rules.outbox import recent_recipients
from rules.params import Params
from rules.templates import FieldTemplate, render, template_problems

log = logging.getLogger(__name__)
DEFAULT_PER_HOUR = 10
# Message kinds that are machines talking; answering them can start a mail loop.
AUTOMATIC_KINDS = frozenset({"auto_reply", "bounce", "receipt"})


class EmailAction:
    """Send a notification built from the event's fields."""

    name = "email"

    def __init__(self, env: ActionEnvironment) -> None:
        self.env = env

    def prepare(self, params: Params) -> dict[str, Any]:
        """Keys: to (addresses or templates), subject, body (templates), max_per_hour."""
        if self.env.smtp is None:
            params.problem("type", "email needs an [smtp] table in ackmail.toml to send "
                                   "through; add one")
        to = params.str_list("to") or []
        for entry in to:
            for problem in _recipient_problems(entry, params.fields):
                params.problem("to", f"to {problem}")
        return {
            "to": to,
            "subject": params.template("subject"),
            "body": params.template("body"),
            "max_per_hour": params.number("max_per_hour", DEFAULT_PER_HOUR, low=1, high=10_000),
        }

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """Send to every recipient still under its hourly limit."""
        from_event = [e for e in delivery.params["to"] if FieldTemplate(e).get_identifiers()]
        if from_event:
            _refuse_automatic(delivery.payload)
        wanted = _recipients(delivery.params["to"], delivery.payload)
        allowed, limited = self._under_limit(wanted, int(delivery.params["max_per_hour"]))
        if not allowed:
            raise PermanentError(
                f"not sent: {', '.join(limited)} already got {delivery.params['max_per_hour']} "
                "notifications in the last hour (max_per_hour); retry later if it still matters"
            )
        mailer = self._mailer()
        message = build_message(
            sender=mailer.sender,
            to=allowed,
            subject=render(delivery.params["subject"], delivery.payload),
            text=render(delivery.params["body"], delivery.payload),
            domain=self.env.message_id_domain,
            headers={**NOTIFICATION_HEADERS, **_threading(delivery.payload, from_event)},
        )
        server = mailer.send(message)
        return {"recipients": allowed, "rate_limited": limited, "server": server,
                "message_id": message["Message-ID"]}

    def _mailer(self) -> Mailer:
        if self.env.smtp is None or self.env.providers is None:
            raise PermanentError("email action: [smtp] is not configured; add it to ackmail.toml")
        return Mailer(self.env.smtp, self.env.providers)

    def _under_limit(self, addresses: list[str], per_hour: int) -> tuple[list[str], list[str]]:
        if self.env.engine is None:
            return addresses, []
        sent = recent_recipients(self.env.engine, self.name, utcnow() - timedelta(hours=1))
        allowed = [a for a in addresses if sent[a] < per_hour]
        limited = [a for a in addresses if a not in allowed]
        if limited:
            log.warning("email: rate limit reached for %s; not notified", ", ".join(limited))
        return allowed, limited


def _recipient_problems(entry: str, fields: frozenset[str]) -> list[str]:
    if "$" in entry:
        return template_problems(entry, fields)
    return [] if _address(entry) else [f"lists {entry!r}, which is not an email address"]


def _address(text: str) -> str | None:
    try:
        address = Address(addr_spec=text.strip())
    except (HeaderParseError, ValueError, IndexError):
        return None
    return address.addr_spec.lower() if address.username and address.domain else None


def _recipients(entries: list[str], payload: Mapping[str, Any]) -> list[str]:
    """Rendered, checked, de-duplicated addresses; none at all is a permanent failure."""
    found: list[str] = []
    for entry in entries:
        text = render(entry, payload)
        address = _address(text) if text else None
        if address is None:
            log.warning("email: recipient %r gave %r, not an address; skipped", entry, text)
        elif address not in found:
            found.append(address)
    if not found:
        raise PermanentError(f"not sent: no recipient address came out of {entries!r} for "
                             "this event")
    return found


def _refuse_automatic(payload: Mapping[str, Any]) -> None:
    """Never answer a machine (auto-reply, bounce, receipt) or ackmail's own mail."""
    _, kind = lookup(payload, "message.kind")
    _, message_id = lookup(payload, "message.message_id")
    if kind in AUTOMATIC_KINDS:
        raise PermanentError(f"not sent: the event's message is an automatic message ({kind}); "
                             "ackmail never answers one (mail loops)")
    if isinstance(message_id, str) and message_id.startswith("<" + OWN_MESSAGE_ID_PREFIX):
        raise PermanentError("not sent: the event's message is ackmail's own mail; "
                             "ackmail never answers itself")


def _threading(payload: Mapping[str, Any], from_event: list[str]) -> dict[str, str]:
    """An answer to a sender threads under their message."""
    _, message_id = lookup(payload, "message.message_id")
    if from_event and isinstance(message_id, str) and message_id:
        return {"In-Reply-To": message_id, "References": message_id}
    return {}
