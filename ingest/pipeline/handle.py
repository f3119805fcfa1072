"""One message through parse -> correlate -> decide -> record, inside its batch's transaction.

A ``Batch`` holds what the messages of one transaction share: the session, the index
of what is recorded already, the recipients their tokens name, the locked requests,
and the recorder that writes rows in bulk — a few queries per batch, not per message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from ingest.correlate import Correlation, correlate
from ingest.decide import Vote, decide, read_answer
from ingest.parse.base import MessageKind, ParsedMessage
from ingest.pipeline.base import Arrival, PipelineConfig, Processed
from ingest.pipeline.pool import InProcessPreparer, Preparing
from ingest.store.events import content_hash
from ingest.store.models import MessageStatus, Request
from ingest.store.recorder import MessageRow, Recorded, RecordedIndex, Recorder
from ingest.timeutil import isoformat_z, utcnow

# Why a message of each non-reply kind is not read as a decision.
IGNORED_KINDS = {
    MessageKind.AUTO_REPLY: "automatic reply",
    MessageKind.BOUNCE: "delivery failure report (bounce)",
    MessageKind.RECEIPT: "read or delivery receipt",
}


@dataclass(frozen=True)
class Handled:
    """A message's result, and its new row, whose id exists only after the flush."""

    result: Processed
    parsed: ParsedMessage | None
    message: MessageRow | None = None

    def processed(self) -> Processed:
        """The result with the row's id (once the batch has flushed)."""
        if self.message is None:
            return self.result
        return replace(self.result, message_id=self.message.id)


class BatchRun:
    """The messages of one transaction."""

    def __init__(self, session: Session, config: PipelineConfig, arrivals: Sequence[Arrival],
                 preparing: Preparing | None = None) -> None:
        self.session = session
        self.config = config
        self.arrivals = arrivals
        self.preparing = preparing or InProcessPreparer(config).start(
            [arrival.raw for arrival in arrivals])
        self.recorder = Recorder(session)
        self.recorded: RecordedIndex  # built by run() or quarantine(), once the digests are known

    def run(self, note: str | None = None) -> list[Handled]:
        """Work out and record what becomes of each message, in order."""
        prepared = self.preparing()
        self.recorded = self._index([each.digest for each in prepared])
        # Two workers deciding one request at once would both see it pending: the requests'
        # rows are locked as they are read.
        found = correlate(self.session, [each.parsed for each in prepared],
                          secret=self.config.token_secret, lock=True)
        self.recorder.load_answers({c.request.id for c in found if c.request is not None})
        # Rows wait for the flush below; a query in between must not write them one by one.
        with self.session.no_autoflush:
            handled = [_Job(self, arrival, each.digest, note).run(each.parsed, correlation)
                       for arrival, each, correlation
                       in zip(self.arrivals, prepared, found, strict=True)]
        self.recorder.flush()
        return handled

    def quarantine(self, reason: str) -> list[Handled]:
        """Record each message as quarantined with ``reason``, without parsing it."""
        digests = [content_hash(arrival.raw) for arrival in self.arrivals]
        self.recorded = self._index(digests)
        handled = [_Job(self, arrival, digest).quarantined(reason, None, [reason])
                   for arrival, digest in zip(self.arrivals, digests, strict=True)]
        self.recorder.flush()
        return handled

    def _index(self, digests: list[str]) -> RecordedIndex:
        sources = [arrival.source for arrival in self.arrivals]
        return RecordedIndex(self.session, list(zip(sources, digests, strict=True)))


class _Job:
    """One message through the steps of ``STEPS``; each step is a method."""

    def __init__(self, batch: BatchRun, arrival: Arrival, digest: str,
                 note: str | None = None) -> None:
        self.batch, self.config, self.arrival, self.digest = batch, batch.config, arrival, digest
        self.notes = [note] if note else []
        self.parsed: ParsedMessage | None = None

    def run(self, parsed: ParsedMessage, found: Correlation) -> Handled:
        """The steps of ``STEPS`` in order; the first that returns a result ends the run."""
        self.parsed = self.reading = parsed
        self.found = found
        for _name, step in STEPS:
            handled = step(self)
            if handled is not None:
                return handled
        raise AssertionError("the last step handles every message that reaches it")

    @property
    def evidence(self) -> list[str]:
        return [*self.notes, *self.reading.evidence, *self.found.reasons]

    def if_duplicate(self) -> Handled | None:
        existing = self.batch.recorded.find(self.arrival.source, self.digest,
                                            self.reading.message_id)
        return None if existing is None else self.duplicate(existing)

    def if_unreadable(self) -> Handled | None:
        problem = self.reading.problem
        if not problem:
            return None
        return self.quarantined(problem, self.reading, [problem, *self.reading.defects])

    def if_machine_mail(self) -> Handled | None:
        parsed = self.reading
        if parsed.kind not in IGNORED_KINDS:
            return None
        first = parsed.reasons[0] if parsed.reasons else parsed.kind.value
        return self.ignored(f"{IGNORED_KINDS[parsed.kind]} ({first}); not a decision",
                            parsed, self.evidence, self.found.request)

    def if_unmatched(self) -> Handled | None:
        if self.found.request is not None:
            return None
        return self.unmatched(self.reading, self.found, self.evidence)

    def as_answer(self) -> Handled:
        request = self.found.request
        assert request is not None  # if_unmatched took every message without one
        return self.respond(self.reading, self.found, request)

    def duplicate(self, existing: Recorded) -> Handled:
        if existing.id is None:  # recorded earlier in this very batch
            self.batch.recorder.flush()
        result = Processed(None, f"already recorded as message #{existing.id}", existing.id,
                           recorded=existing.status)
        return Handled(result, self.parsed)

    def _record(
        self,
        status: MessageStatus,
        reason: str,
        parsed: ParsedMessage | None,
        evidence: list[str],
        request: Request | None = None,
    ) -> MessageRow:
        # Bytes over the parse limit are not worth keeping: reprocessing would refuse them again.
        keep = len(self.arrival.raw) <= self.config.parse.limits.max_bytes
        message = self.batch.recorder.message(
            self.arrival.source,
            self.arrival.raw,
            self.digest,
            parsed,
            status=status,
            reason=reason,
            reasons=evidence,
            request=request,
            keep_raw=keep,
        )
        self.batch.recorded.add(message)
        return message

    def quarantined(
        self, reason: str, parsed: ParsedMessage | None, evidence: list[str]
    ) -> Handled:
        message = self._record(MessageStatus.QUARANTINED, reason, parsed, [*self.notes, *evidence])
        self.batch.recorder.events(["message.quarantined"], message)
        return Handled(Processed(MessageStatus.QUARANTINED, reason), parsed, message)

    def ignored(
        self,
        reason: str,
        parsed: ParsedMessage,
        evidence: list[str],
        request: Request | None = None,
    ) -> Handled:
        message = self._record(MessageStatus.IGNORED, reason, parsed, evidence, request)
        request_id = request.id if request else None
        result = Processed(MessageStatus.IGNORED, reason, request_id=request_id)
        return Handled(result, parsed, message)

    def unmatched(self, parsed: ParsedMessage, found: Correlation, evidence: list[str]) -> Handled:
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
        self.batch.recorder.events(["message.unmatched"], message)
        return Handled(Processed(MessageStatus.IGNORED, reason), parsed, message)

    def respond(self, parsed: ParsedMessage, found: Correlation, request: Request) -> Handled:
        parsed, read = read_answer(request, parsed, self.config.parse.vocabulary)
        self.parsed = parsed
        evidence = [*self.notes, *parsed.evidence, *found.reasons, *read]
        received_at = self.arrival.source.received_at or utcnow()
        prior = [r for r in self.batch.recorder.answers(request) if r.counted]
        decision = decide(
            request, Vote(found.recipient, parsed.sender, parsed.intent, received_at), prior
        )
        evidence.append(decision.reason)
        message = self._record(MessageStatus.PROCESSED, decision.reason, parsed, evidence, request)
        recorder = self.batch.recorder
        response = recorder.response(
            message, request, found.recipient, parsed, decision, received_at, evidence
        )
        recorder.settle(request, decision, received_at)
        settled = [] if decision.new_status is None else [f"request.{decision.new_status}"]
        recorder.events(["response.recorded", *settled], message, request, response)
        result = Processed(MessageStatus.PROCESSED, decision.reason, None, request.id,
                           parsed.intent, decision.decisive)
        return Handled(result, parsed, message)


Step = Callable[[_Job], "Handled | None"]

# One message's chain, in order (as Mailman routes by a table): the first step that
# returns a result records the message and ends its run.
STEPS: tuple[tuple[str, Step], ...] = (
    # Recorded before (its source identity, or its bytes and Message-ID): nothing is written,
    # and the server files it as its first record says.
    ("duplicate", _Job.if_duplicate),
    # Not readable within the limits (size, parts, nesting, not mail): quarantined, reason kept.
    ("unreadable", _Job.if_unreadable),
    # An automatic reply, a bounce or a receipt: recorded and ignored, never a decision.
    ("machine mail", _Job.if_machine_mail),
    # No token that exists and verifies: recorded (an event for ops), or old mail left alone.
    ("unmatched", _Job.if_unmatched),
    # A person's answer to a request: decided (ingest.decide) and recorded with its response.
    ("answer", _Job.as_answer),
)
