"""Messages through parse -> correlate -> decide -> store, a batch in one transaction.

A message is recorded exactly once: a second delivery of the same source
identity (or the same bytes and Message-ID after a UIDVALIDITY change) is
reported as a duplicate and writes nothing. Whatever goes wrong inside the
pipeline, the message is still recorded — quarantined, with the error — and
the caller goes on with the next one. Only a database that cannot be reached
is raised (as TransientError), so the messages stay on the server for a retry.

A batch commits once for all its messages: that, not parsing, is what a message
costs. A batch that fails as a whole is rolled back and its messages go through
one at a time, so only the message at fault is quarantined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.errors import DatabaseUnavailable, TransientError, UserError
from ingest.parse.base import ParsedMessage
from ingest.pipeline.base import Arrival, PipelineConfig, Processed, parse_options
from ingest.pipeline.handle import BatchRun
from ingest.pipeline.pool import Preparing
from ingest.sources.base import SourceRef
from ingest.store.db import database_errors, transaction
from ingest.store.events import content_hash
from ingest.store.models import Message, MessageStatus, RawMessage
from ingest.store.recorder import RecordedIndex

__all__ = ["Arrival", "PipelineConfig", "Processed", "parse_options", "process_batch",
           "process_message", "quarantine", "reprocess"]
log = logging.getLogger(__name__)


def process_batch(
    engine: Engine,
    config: PipelineConfig,
    arrivals: Sequence[Arrival],
    *,
    dry_run: bool = False,
    preparing: Preparing | None = None,
    also: Callable[[Session], None] | None = None,
) -> list[Processed]:
    """Record ``arrivals`` in one transaction, each once, with its decision; results in order.

    Never raises for anything the messages contain. With ``dry_run`` everything is
    worked out and then rolled back: nothing is stored. ``preparing`` is the messages'
    prepare stage begun elsewhere (``Preparer.start``); by default it runs here.
    ``also`` writes what belongs with the batch (the poller's checkpoint) in its
    transaction, or in one of its own when the messages go one at a time.
    """
    if len(arrivals) > 1:
        try:
            with database_errors(_recording(arrivals[0].source)):
                return _run(engine, config, arrivals, dry_run, preparing, also)
        except IntegrityError:
            log.info("another worker recorded one of %d messages at the same moment; "
                     "recording them one at a time", len(arrivals))
        except DatabaseUnavailable:
            raise
        except Exception:  # one message's fault must not hold back the others
            log.warning("a batch of %d messages failed; processing them one at a time "
                        "to quarantine the one at fault", len(arrivals))
    results = [process_message(engine, config, arrival, dry_run=dry_run) for arrival in arrivals]
    if also is not None and not dry_run:
        with database_errors("writing with the batch"), transaction(engine) as session:
            also(session)
    return results


def process_message(
    engine: Engine, config: PipelineConfig, arrival: Arrival, *, dry_run: bool = False
) -> Processed:
    """Record one message once, with its decision; never raises for anything it contains."""
    source = arrival.source
    try:
        with database_errors(_recording(source)):
            (result,) = _run(engine, config, [arrival], dry_run)
    except IntegrityError:
        return _after_conflict(engine, arrival)
    except DatabaseUnavailable:
        raise
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
    return result


def _run(
    engine: Engine,
    config: PipelineConfig,
    arrivals: Sequence[Arrival],
    dry_run: bool,
    preparing: Preparing | None = None,
    also: Callable[[Session], None] | None = None,
) -> list[Processed]:
    with Session(engine) if dry_run else transaction(engine) as session:
        handled = BatchRun(session, config, arrivals, preparing).run()
        if also is not None:
            also(session)
        results = [item.processed() for item in handled]
    for arrival, item, result in zip(arrivals, handled, results, strict=True):
        _log_result(arrival, item.parsed, result, dry_run)
    return results


def _recording(source: SourceRef) -> str:
    return f"recording {source.source_key} in {source.mailbox}"


def _log_result(
    arrival: Arrival, parsed: ParsedMessage | None, result: Processed, dry_run: bool
) -> None:
    """One structured line per message, after its record committed (or was rolled back)."""
    level = logging.WARNING if result.status == MessageStatus.QUARANTINED else logging.INFO
    if not log.isEnabledFor(level):
        return
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
        (handled,) = BatchRun(session, config, [Arrival(source, raw)]).run(note=was)
        return handled.processed()


def _after_conflict(engine: Engine, arrival: Arrival) -> Processed:
    """Another worker recorded the same message at the same moment: that is a duplicate."""
    source, digest = arrival.source, content_hash(arrival.raw)
    with transaction(engine) as session:
        existing = RecordedIndex(session, [(source, digest)]).find(source, digest, None)
        if existing is not None:
            return Processed(None, f"already recorded as message #{existing.id}", existing.id,
                             recorded=existing.status)
    raise TransientError(
        f"could not record {source.source_key} in {source.mailbox}: "
        "a constraint refused it; it will be retried"
    )


def quarantine(engine: Engine, config: PipelineConfig, arrival: Arrival, reason: str) -> Processed:
    """Record the message as quarantined with ``reason`` (and tell the rules engine)."""
    with transaction(engine) as session:
        (handled,) = BatchRun(session, config, [arrival]).quarantine(reason)
        result = handled.processed()
    _log_result(arrival, None, result, dry_run=False)
    return result
