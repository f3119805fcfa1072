"""The dispatcher: events through the rules, then due outcomes to their actions.

At least once: an outcome is leased (``outbox.claim_due``), delivered outside
any database transaction, then marked delivered, pending again after an
exponential backoff with jitter, or dead after its last attempt (or at once for
a permanent failure). A dispatcher that dies between sending and marking leaves
a lease that runs out; the next claim re-sends with the same Idempotency-Key.
Housekeeping jobs (the request expiry sweep) run at the start of every round;
the CLI hands them in, so this package never imports the ingest pipeline.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from tenacity import RetryCallState, Retrying, wait_exponential, wait_random

from ingest.errors import PermanentError, TransientError
from ingest.store.db import database_errors
from ingest.timeutil import utcnow
from rules.actions.registry import ActionRegistry
from rules.base import DEFAULT_MAX_ATTEMPTS, Delivery
from rules.engine import process_events
from rules.loader import RuleSet
from rules.outbox import Claim, claim_due, mark_delivered, mark_failed

log = logging.getLogger(__name__)
Housekeeping = Callable[[Engine], int]


def default_worker_id() -> str:
    """host:pid:random — unique per dispatcher, readable in ``claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Backoff:
    """Exponential delays (base, 2 base, 4 base ... up to cap) plus up to ``base`` of jitter."""

    base: timedelta = timedelta(seconds=15)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        seconds = self.base.total_seconds()
        wait = wait_exponential(multiplier=seconds, max=self.cap.total_seconds()) + \
            wait_random(0, seconds)
        state = RetryCallState(Retrying(), None, (), {})
        state.attempt_number = attempt
        return timedelta(seconds=wait(state))


@dataclass(frozen=True)
class DispatchConfig:
    """How a dispatcher works: who it is, how long a lease lasts, batch sizes, backoff."""

    worker_id: str = field(default_factory=default_worker_id)
    lease: timedelta = timedelta(minutes=5)  # longer than any action's timeout
    batch: int = 20
    backoff: Backoff = field(default_factory=Backoff)
    idle_seconds: float = 2.0


@dataclass
class RoundTally:
    """What one round did."""

    events: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    housekeeping: int = 0

    def __str__(self) -> str:
        return (f"events processed: {self.events}; outcomes delivered: {self.delivered}, "
                f"to retry: {self.retrying}, dead: {self.dead}")


class Dispatcher:
    """Runs the rules over new events and delivers due outcomes."""

    def __init__(self, engine: Engine, rules: RuleSet, registry: ActionRegistry,
                 config: DispatchConfig | None = None,
                 housekeeping: Sequence[Housekeeping] = ()) -> None:
        self.engine = engine
        self.rules = rules
        self.registry = registry
        self.config = config or DispatchConfig()
        self.housekeeping = tuple(housekeeping)

    def run_once(self) -> RoundTally:
        """Drain: housekeeping, every new event, every outcome due now; then return."""
        tally = RoundTally()
        for job in self.housekeeping:
            tally.housekeeping += job(self.engine)
        while batch := process_events(self.engine, self.rules):
            tally.events += batch
        while claims := claim_due(self.engine, self.config.worker_id, self.config.lease,
                                  self.config.batch):
            for claim in claims:
                self.attempt(claim, tally)
        return tally

    def run_forever(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set, resting ``idle_seconds`` between them.

        A database that goes away ends a round, not the loop: the outbox is in the
        database, so nothing is lost, and the next round picks up where this one stopped.
        """
        while not stop.is_set():
            try:
                with database_errors("running a dispatch round"):
                    tally = self.run_once()
            except TransientError as exc:
                log.warning("dispatch round stopped, retrying in %s s: %s",
                            self.config.idle_seconds, exc)
            else:
                if tally.events or tally.delivered or tally.retrying or tally.dead:
                    log.info("dispatch round: %s", tally)
            stop.wait(self.config.idle_seconds)

    def attempt(self, claim: Claim, tally: RoundTally) -> None:
        """Deliver one claimed outcome and record what happened."""
        delivery = Delivery(claim.outcome_id, claim.event_id, claim.event_type, claim.rule,
                            claim.payload, claim.params, claim.attempts)
        try:
            result = self.registry.require(claim.action).deliver(delivery)
        except Exception as exc:  # any failure of an action, a plugin's too, is recorded
            self._failed(claim, exc, tally)
            return
        if not mark_delivered(self.engine, claim, result):
            log.warning("outcome #%s was delivered but its lease had passed to another "
                        "dispatcher", claim.outcome_id)
        tally.delivered += 1

    def _failed(self, claim: Claim, error: Exception, tally: RoundTally) -> None:
        text = str(error) or type(error).__name__
        limit = int(claim.params.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
        retry_at = self.retry_time(claim.attempts, limit, error)
        if retry_at is None:
            log.error("outcome #%s (%s, rule %s) is dead after %s attempt(s): %s",
                      claim.outcome_id, claim.action, claim.rule, claim.attempts, text)
            tally.dead += 1
        else:
            log.warning("outcome #%s (%s, rule %s) attempt %s failed, next at %s: %s",
                        claim.outcome_id, claim.action, claim.rule, claim.attempts,
                        retry_at.isoformat(), text)
            tally.retrying += 1
        mark_failed(self.engine, claim, text, retry_at)

    def retry_time(self, attempts: int, limit: int, error: Exception) -> datetime | None:
        """When to try again, or None when the outcome is dead."""
        if isinstance(error, PermanentError) or attempts >= limit:
            return None
        return utcnow() + self.config.backoff.delay(attempts)
