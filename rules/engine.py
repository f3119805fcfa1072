"""The rules engine: unprocessed events -> outcome rows, one transaction per batch.

Rules are tried in file order; every rule whose ``on`` lists the event type and
whose ``when`` holds fires, and each of its actions becomes one ``outcomes`` row
(delivered later by the dispatcher). A fired rule with ``stop = true`` ends the
matching. The outcome rows and the event's ``processed_at`` are written in the
same transaction, so an event yields its outcomes exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update

from ingest.store.db import transaction
from ingest.store.models import Event, Outcome, OutcomeStatus
from ingest.timeutil import utcnow
from rules.loader import Rule, RuleSet

log = logging.getLogger(__name__)
DEFAULT_BATCH = 100


@dataclass(frozen=True)
class RuleVerdict:
    """Whether one rule fired for one event, and why (or why not)."""

    rule: Rule
    fired: bool
    reason: str


def evaluate(rules: RuleSet, event_type: str, payload: Mapping[str, Any]) -> list[RuleVerdict]:
    """Every rule's verdict on one event, in file order."""
    verdicts: list[RuleVerdict] = []
    stopped_by: str | None = None
    for rule in rules.rules:
        if stopped_by is not None:
            verdicts.append(RuleVerdict(rule, False, f"not tried: rule '{stopped_by}' fired "
                                                     "with stop = true"))
            continue
        verdict = _judge(rule, event_type, payload)
        verdicts.append(verdict)
        if verdict.fired and rule.stop:
            stopped_by = rule.name
    return verdicts


def _judge(rule: Rule, event_type: str, payload: Mapping[str, Any]) -> RuleVerdict:
    if event_type not in rule.on:
        return RuleVerdict(rule, False, f"listens to {', '.join(rule.on)}, not {event_type}")
    verdict = rule.when.check(payload)
    return RuleVerdict(rule, verdict.ok, verdict.reason)


def outcomes_for(event: Event, verdicts: list[RuleVerdict]) -> list[Outcome]:
    """One pending outcome per action of every rule that fired."""
    now = utcnow()
    return [
        Outcome(event_id=event.id, rule=v.rule.name, action=spec.type, params=dict(spec.params),
                status=OutcomeStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now,
                updated_at=now)
        for v in verdicts if v.fired
        for spec in v.rule.actions
    ]


def process_events(engine: Engine, rules: RuleSet, *, limit: int = DEFAULT_BATCH) -> int:
    """Turn up to ``limit`` unprocessed events into outcomes; returns how many were processed."""
    query = (
        select(Event)
        .where(Event.processed_at.is_(None))
        .order_by(Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    processed = 0
    with transaction(engine) as session:
        for event in session.scalars(query).all():
            # The conditional UPDATE is the claim: on SQLite (no SKIP LOCKED) a second
            # worker that read the same event finds it taken and leaves it alone.
            verdicts = evaluate(rules, event.type, event.payload)
            taken = cast(CursorResult[Any], session.execute(
                update(Event)
                .where(Event.id == event.id, Event.processed_at.is_(None))
                .values(processed_at=utcnow(), rule_trace=trace(verdicts))
                .execution_options(synchronize_session=False)
            ))
            if taken.rowcount != 1:
                continue
            session.add_all(outcomes_for(event, verdicts))
            _log(event, verdicts)
            processed += 1
    return processed


def trace(verdicts: list[RuleVerdict]) -> list[dict[str, Any]]:
    """Every rule's verdict as stored with the event, so ops can ask why a rule did not fire."""
    return [{"rule": v.rule.name, "fired": v.fired, "reason": v.reason} for v in verdicts]


def _log(event: Event, verdicts: list[RuleVerdict]) -> None:
    fired = [v.rule.name for v in verdicts if v.fired]
    log.info("event #%s %s: rules fired: %s", event.id, event.type, ", ".join(fired) or "none")
    for verdict in verdicts:
        log.debug("event #%s rule %s: %s (%s)", event.id, verdict.rule.name,
                  "fired" if verdict.fired else "no", verdict.reason)
