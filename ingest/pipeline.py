"""One message through parse -> correlate -> decide -> store, in one transaction.

A message is recorded exactly once: a second delivery of the same source
identity (or the same bytes and Message-ID after a UIDVALIDITY change) is
reported as a duplicate and writes nothing. Whatever goes wrong inside the
pipeline, the message is still recorded — quarantined, with the error — and
the caller goes on with the next one. Only a database that cannot be reached
is raised (as TransientError), so the message stays on the server for a retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ingest.config import Settings
from ingest.correlate import Correlation, correlate
from ingest.decide import Vote, decide
from ingest.errors import ConfigError, TransientError, UserError
from ingest.parse.base import Intent, MessageKind, ParsedMessage
from ingest.parse.message import ParseOptions, parse_message, read_intent
from ingest.parse.vocabulary import load_vocabulary
from ingest.record import (
    add_event,
    content_hash,
    find_recorded,
    record_message,
    record_response,
    settle,
)
from ingest.sources.base import SourceRef
from ingest.store.db import transaction
from ingest.store.models import Message, MessageStatus, RawMessage, Request
from ingest.timeutil import isoformat_z, utcnow

log = logging.getLogger(__name__)

# Why a message of each non-reply kind is not read as a decision.
IGNORED_KINDS = {
    MessageKind.AUTO_REPLY: "automatic reply",
    MessageKind.BOUNCE: "delivery failure report (bounce)",
    MessageKind.RECEIPT: "read or delivery receipt",
}


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from the settings, resolved once."""

    parse: ParseOptions
    token_secret: str
    reply_address: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        secret = settings.security.token_secret
        if secret is None:
            raise ConfigError(
                f"{settings.path}: [security] token_secret is not set; it is needed to check "
                "reply tokens (run 'ackmail init' to generate one)"
            )
        return cls(parse_options(settings), secret.reveal(), settings.requests.reply_address)


def parse_options(settings: Settings) -> ParseOptions:
    """The parser's configuration: sender trust and the intent vocabulary."""
    return ParseOptions(
        limits=settings.limits,
        trusted_authserv_id=settings.security.trusted_authserv_id,
        require_dmarc_pass=settings.security.require_dmarc_pass,
        vocabulary=load_vocabulary(settings.intents_file),
    )


@dataclass(frozen=True)
class Arrival:
    """A message to process. Messages that arrived before ``backlog_before`` (when the
    mailbox was first watched, or ``poll --from``) are old mail: unless they answer a
    request they are left alone, without events, so onboarding acts on nothing."""

    source: SourceRef
    raw: bytes
    backlog_before: datetime | None = None


@dataclass(frozen=True)
class Processed:
    """What became of one message."""

    status: MessageStatus | None
    reason: str
    message_id: int | None = None
    request_id: int | None = None
    intent: Intent = Intent.UNKNOWN
    decisive: bool = False

    @property
    def duplicate(self) -> bool:
        return self.status is None


def process_message(
    engine: Engine, config: PipelineConfig, arrival: Arrival, *, dry_run: bool = False
) -> Processed:
    """Record a message once, with its decision; never raises for anything it contains.

    With ``dry_run`` everything is worked out and then rolled back: nothing is stored.
    """
    source = arrival.source
    try:
        if dry_run:
            with Session(engine) as session:
                job = _Job(session, config, arrival)
                result = job.run()
        else:
            with transaction(engine) as session:
                job = _Job(session, config, arrival)
                result = job.run()
    except IntegrityError:
        return _after_conflict(engine, arrival)
    except DBAPIError as exc:
        raise TransientError(
            f"database error while recording {source.source_key} in {source.mailbox}: {exc.orig}"
        ) from None
    except Exception as exc:  # the shunt: a pipeline bug must not lose the message
        log.exception("pipeline failed on %s %s", source.mailbox, source.source_key)
        if dry_run:
            return Processed(MessageStatus.QUARANTINED, f"processing failed ({exc})")
        return quarantine(
            engine,
            config,
            arrival,
            f"processing failed ({type(exc).__name__}: {exc}); "
            "kept for 'ackmail messages reprocess' after a fix",
        )
    _log_result(arrival, job.parsed, result, dry_run)
    return result


def _log_result(
    arrival: Arrival, parsed: ParsedMessage | None, result: Processed, dry_run: bool
) -> None:
    """One structured line per message, after its record committed (or was rolled back)."""
    fields = {
        "mailbox": arrival.source.mailbox,
        "uid": arrival.source.uid or arrival.source.source_key,
        "message_id": parsed.message_id if parsed else None,
        "kind": parsed.kind.value if parsed and not parsed.problem else None,
        "intent": result.intent.value,
        "request": result.request_id,
        "result": result.status.value if result.status else "duplicate",
        "decisive": result.decisive,
        "reason": result.reason,
    }
    if dry_run:
        fields["dry_run"] = True
    level = logging.WARNING if result.status == MessageStatus.QUARANTINED else logging.INFO
    log.log(level, "message %s", fields["result"], extra={"fields": fields})


def reprocess(engine: Engine, config: PipelineConfig, message_id: int) -> Processed:
    """Run a recorded (ignored or quarantined) message through the pipeline again.

    Its old record is replaced in the same transaction, so nothing is recorded twice;
    a message that already produced a response is refused for the same reason.
    """
    with transaction(engine) as session:
        message = session.get(Message, message_id)
        if message is None:
            raise UserError(f"there is no message #{message_id}; see 'ackmail messages list'")
        if message.status == MessageStatus.PROCESSED:
            raise UserError(
                f"message #{message_id} was processed; reprocessing it would record "
                "its response twice"
            )
        raw = session.scalar(select(RawMessage.raw).where(RawMessage.message_id == message_id))
        if raw is None:
            raise UserError(
                f"the bytes of message #{message_id} are no longer kept "
                "([service] keep_raw); it cannot be reprocessed"
            )
        source = SourceRef(
            message.mailbox,
            message.source_key,
            message.folder,
            message.uidvalidity,
            message.uid,
            message.uidl,
            message.filename,
            message.received_at,
        )
        was = f"reprocessed; was message #{message.id} ({message.status}: {message.reason})"
        session.delete(message)
        session.flush()
        return _Job(session, config, Arrival(source, raw), note=was).run()


def _after_conflict(engine: Engine, arrival: Arrival) -> Processed:
    """Another worker recorded the same message at the same moment: that is a duplicate."""
    with transaction(engine) as session:
        existing = find_recorded(session, arrival.source, content_hash(arrival.raw), None)
        if existing is not None:
            return Processed(None, f"already recorded as message #{existing.id}", existing.id)
    raise TransientError(
        f"could not record {arrival.source.source_key} in "
        f"{arrival.source.mailbox}: a constraint refused it; it will be retried"
    )


def quarantine(engine: Engine, config: PipelineConfig, arrival: Arrival, reason: str) -> Processed:
    """Record the message as quarantined with ``reason`` (and tell the rules engine)."""
    with transaction(engine) as session:
        result = _Job(session, config, arrival).quarantined(reason, None, [reason])
    _log_result(arrival, None, result, dry_run=False)
    return result


class _Job:
    """One message inside one session: the steps of the pipeline, each a method."""

    def __init__(
        self, session: Session, config: PipelineConfig, arrival: Arrival, note: str | None = None
    ) -> None:
        self.session, self.config, self.arrival = session, config, arrival
        self.notes = [note] if note else []
        self.parsed: ParsedMessage | None = None

    def run(self) -> Processed:
        parsed = self.parsed = parse_message(self.arrival.raw, self.config.parse)
        existing = find_recorded(
            self.session, self.arrival.source, content_hash(self.arrival.raw), parsed.message_id
        )
        if existing is not None:
            return Processed(None, f"already recorded as message #{existing.id}", existing.id)
        if parsed.problem:
            return self.quarantined(parsed.problem, parsed, [parsed.problem, *parsed.defects])
        found = correlate(
            self.session,
            parsed,
            secret=self.config.token_secret,
            reply_address=self.config.reply_address,
        )
        evidence = [*self.notes, *parsed.evidence, *found.reasons]
        if parsed.kind in IGNORED_KINDS:
            first = parsed.reasons[0] if parsed.reasons else parsed.kind.value
            return self.ignored(
                f"{IGNORED_KINDS[parsed.kind]} ({first}); not a decision",
                parsed,
                evidence,
                found.request,
            )
        if found.request is None:
            return self.unmatched(parsed, found, evidence)
        return self.respond(parsed, found, found.request, evidence)

    def _record(
        self,
        status: MessageStatus,
        reason: str,
        parsed: ParsedMessage | None,
        evidence: list[str],
        request: Request | None = None,
    ) -> Message:
        # Bytes over the parse limit are not worth keeping: reprocessing would refuse them again.
        keep = len(self.arrival.raw) <= self.config.parse.limits.max_bytes
        return record_message(
            self.session,
            self.arrival.source,
            self.arrival.raw,
            parsed,
            status=status,
            reason=reason,
            reasons=evidence,
            request=request,
            keep_raw=keep,
        )

    def quarantined(
        self, reason: str, parsed: ParsedMessage | None, evidence: list[str]
    ) -> Processed:
        message = self._record(MessageStatus.QUARANTINED, reason, parsed, [*self.notes, *evidence])
        add_event(self.session, "message.quarantined", message=message)
        return Processed(MessageStatus.QUARANTINED, reason, message.id)

    def ignored(
        self,
        reason: str,
        parsed: ParsedMessage,
        evidence: list[str],
        request: Request | None = None,
    ) -> Processed:
        message = self._record(MessageStatus.IGNORED, reason, parsed, evidence, request)
        return Processed(MessageStatus.IGNORED, reason, message.id, request.id if request else None)

    def unmatched(
        self, parsed: ParsedMessage, found: Correlation, evidence: list[str]
    ) -> Processed:
        arrived = self.arrival.source.received_at or parsed.date
        cutoff = self.arrival.backlog_before
        if cutoff is not None and arrived is not None and arrived < cutoff:
            return self.ignored(
                f"arrived before ackmail started watching this mailbox "
                f"({isoformat_z(cutoff)}) and answers no request; left alone",
                parsed,
                evidence,
            )
        reason = f"not an answer to any request: {found.problem}"
        message = self._record(MessageStatus.IGNORED, reason, parsed, evidence)
        add_event(self.session, "message.unmatched", message=message)
        return Processed(MessageStatus.IGNORED, reason, message.id)

    def respond(
        self, parsed: ParsedMessage, found: Correlation, request: Request, evidence: list[str]
    ) -> Processed:
        # Lock the request row: two workers deciding one request at once would both see it pending.
        self.session.refresh(request, with_for_update=True)
        if parsed.kind == MessageKind.REPLY and request.subject:
            parsed = read_intent(parsed, self.config.parse, request_subject=request.subject)
            evidence = [*self.notes, *parsed.evidence, *found.reasons]
        received_at = self.arrival.source.received_at or utcnow()
        prior = [r for r in request.responses if r.counted]
        decision = decide(
            request, Vote(found.recipient, parsed.sender, parsed.intent, received_at), prior
        )
        evidence.append(decision.reason)
        message = self._record(MessageStatus.PROCESSED, decision.reason, parsed, evidence, request)
        response = record_response(
            self.session, message, request, found.recipient, parsed, decision, received_at, evidence
        )
        settle(request, decision, received_at)
        add_event(
            self.session, "response.recorded", message=message, request=request, response=response
        )
        if decision.new_status is not None:
            add_event(
                self.session,
                f"request.{decision.new_status}",
                message=message,
                request=request,
                response=response,
            )
        return Processed(
            MessageStatus.PROCESSED,
            decision.reason,
            message.id,
            request.id,
            parsed.intent,
            decision.decisive,
        )
