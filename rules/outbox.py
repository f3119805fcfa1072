"""The outcomes table as a durable outbox: claim due rows, record results, list, retry.

State lives in the row: ``status`` (pending -> sending -> delivered | pending
again | dead), ``attempts``, ``next_attempt_at``, ``last_error``, and the lease
``claimed_by`` / ``claimed_until``. A claim is a conditional UPDATE keyed on the
attempt count the claimer saw, so two dispatchers never both win the same row;
on PostgreSQL the SELECT also takes ``FOR UPDATE SKIP LOCKED`` so they do not
even wait for each other. A ``sending`` row whose lease ran out belongs to a
crashed dispatcher and is claimed again (same outcome id, same Idempotency-Key); one
still leased to the claiming worker itself was left by a round that broke off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Engine, and_, or_, select, update
from sqlalchemy.orm import Session

from ingest.errors import UserError
from ingest.store.db import read_session, transaction
from ingest.store.models import Event, Outcome, OutcomeStatus
from ingest.timeutil import utcnow

OUTCOME_COLUMNS = (
    "id", "event_id", "event", "rule", "action", "status", "attempts", "next_attempt_at",
    "last_error", "created_at", "delivered_at",
)
_MAX_ERROR = 2000


@dataclass(frozen=True)
class Claim:
    """An outcome this worker holds the lease on, with its event."""

    outcome_id: int
    event_id: int
    event_type: str
    payload: Mapping[str, Any]
    rule: str
    action: str
    params: Mapping[str, Any]
    attempts: int  # including the attempt this claim is for
    worker: str


def _due(now: datetime, worker: str) -> ColumnElement[bool]:
    sending = Outcome.status == OutcomeStatus.SENDING
    return or_(
        and_(Outcome.status == OutcomeStatus.PENDING, Outcome.next_attempt_at <= now),
        and_(sending, Outcome.claimed_until < now),
        # A worker's rounds never overlap, so what it still holds when it claims again was
        # left by a round the database cut short: it need not wait out its own lease.
        and_(sending, Outcome.claimed_by == worker),
    )


def claim_due(engine: Engine, worker: str, lease: timedelta, limit: int) -> list[Claim]:
    """Lease up to ``limit`` due outcomes to ``worker``; each claim counts as an attempt."""
    now = utcnow()
    query = (
        select(Outcome.id, Outcome.status, Outcome.attempts, Outcome.rule, Outcome.action,
               Outcome.params, Event.id, Event.type, Event.payload)
        .join(Event, Event.id == Outcome.event_id)
        .where(_due(now, worker))
        .order_by(Outcome.next_attempt_at, Outcome.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Outcome)
    )
    claims = []
    with transaction(engine) as session:
        for oid, status, attempts, rule, action, params, eid, etype, payload in session.execute(
            query
        ).all():
            taken = cast(CursorResult[Any], session.execute(
                update(Outcome)
                .where(Outcome.id == oid, Outcome.status == status, Outcome.attempts == attempts)
                .values(status=OutcomeStatus.SENDING, claimed_by=worker,
                        claimed_until=now + lease, attempts=attempts + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            ))
            if taken.rowcount == 1:
                claims.append(Claim(oid, eid, etype, payload, rule, action, params,
                                    attempts + 1, worker))
    return claims


def _finish(engine: Engine, claim: Claim, **values: Any) -> bool:
    """Write the result, only while the claim is still ours (else another worker took over)."""
    with transaction(engine) as session:
        done = cast(CursorResult[Any], session.execute(
            update(Outcome)
            .where(Outcome.id == claim.outcome_id, Outcome.status == OutcomeStatus.SENDING,
                   Outcome.claimed_by == claim.worker, Outcome.attempts == claim.attempts)
            .values(claimed_by=None, claimed_until=None, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ))
        return bool(done.rowcount == 1)


def mark_delivered(engine: Engine, claim: Claim, result: Mapping[str, Any]) -> bool:
    """The outcome was delivered; ``result`` (status code, recipients) is kept in its params."""
    return _finish(engine, claim, status=OutcomeStatus.DELIVERED, delivered_at=utcnow(),
                   last_error=None, params={**claim.params, "result": dict(result)})


def mark_failed(engine: Engine, claim: Claim, error: str, retry_at: datetime | None) -> bool:
    """The attempt failed: pending again at ``retry_at``, or dead when that is None."""
    status = OutcomeStatus.PENDING if retry_at is not None else OutcomeStatus.DEAD
    values: dict[str, Any] = {"status": status, "last_error": error[:_MAX_ERROR]}
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    return _finish(engine, claim, **values)


def retry_outcome(engine: Engine, outcome_id: int) -> None:
    """Put a dead outcome back in the queue, due now, with a fresh attempt budget."""
    with transaction(engine) as session:
        outcome = session.get(Outcome, outcome_id, with_for_update=True)
        if outcome is None:
            raise UserError(f"there is no outcome #{outcome_id}; see 'ackmail outcomes list'")
        if outcome.status != OutcomeStatus.DEAD:
            raise UserError(f"outcome #{outcome_id} is {outcome.status}, not dead; only dead "
                            "outcomes can be retried")
        now = utcnow()
        outcome.status = OutcomeStatus.PENDING
        outcome.attempts = 0
        outcome.next_attempt_at = now
        outcome.updated_at = now


def list_outcomes(session: Session, *, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    """Outcomes newest first, with their event type, as rows keyed by OUTCOME_COLUMNS."""
    query = select(Outcome, Event.type).join(Event, Event.id == Outcome.event_id)
    if status:
        query = query.where(Outcome.status == OutcomeStatus(status))
    query = query.order_by(Outcome.id.desc()).limit(limit).offset(offset)
    return [
        {name: (etype if name == "event" else getattr(outcome, name)) for name in OUTCOME_COLUMNS}
        for outcome, etype in session.execute(query)
    ]


def recent_recipients(engine: Engine, action: str, since: datetime) -> Counter[str]:
    """How many delivered ``action`` outcomes went to each address since ``since``."""
    query = select(Outcome.params).where(
        Outcome.action == action,
        Outcome.status == OutcomeStatus.DELIVERED,
        Outcome.delivered_at >= since,
    )
    counts: Counter[str] = Counter()
    with read_session(engine) as session:
        for params in session.scalars(query):
            sent_to = (params.get("result") or {}).get("recipients", [])
            counts.update(str(address).lower() for address in sent_to)
    return counts
