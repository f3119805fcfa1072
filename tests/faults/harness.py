"""One fault run: an installation, its mail, its random choices, and the end-of-run check.

A test delivers mail (``deliver``), starts and kills ``ackmail`` processes through
``installation``, waits for conditions (``wait_until``; the failure says what was still
outstanding and what is already broken), then lets everything settle, stops the poller and
checks the invariants (``finish``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ingest.store.db import read_session, transaction
from ingest.store.models import Message, Outcome, OutcomeStatus
from ingest.timeutil import utcnow
from tests.faults.backlog import Planned
from tests.faults.installation import Installation
from tests.faults.invariants import Scene, assert_invariants, outstanding, problems
from tests.servers.ackmail_process import AckmailProcess

# PostgreSQL is the production store: tests of faults that are not about the store run there.
POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
SETTLE_SECONDS_PER_MESSAGE = 0.05
# After k faults in a row the poller waits about 2**(k-1) s before it reconnects.
RECONNECT_SECONDS = 90.0
POLL_SECONDS = 0.1  # how often a test looks; each look costs the shared CPUs a little
SETTLE_SECONDS_MIN = 60.0


@dataclass
class FaultRun:
    """The pieces of one fault test, and the moves every fault test makes."""

    installation: Installation
    scene: Scene
    rng: random.Random

    @property
    def note(self) -> str:
        return self.scene.note

    def deliver(self, count: int, *, live: bool = False) -> list[Planned]:
        """Plan ``count`` more messages and put them in the INBOX: written straight into the
        maildir (a backlog), or ``live`` through Dovecot as an MTA delivers, which wakes a
        poller in IDLE. Dovecot finds files written into new/ only at its next periodic
        check, half a minute later, so mail for a waiting poller must come ``live``."""
        planned = self.scene.backlog.plan(self.rng, count)
        if live:
            for message in planned:
                self.scene.server.deliver(self.scene.user, message.raw)
        else:
            self.scene.server.deliver_many(self.scene.user, [p.raw for p in planned])
        return planned

    def recorded(self) -> int:
        """How many messages the database holds."""
        with read_session(self.scene.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Message)) or 0)

    def wait_until(self, condition: Callable[[], bool], what: str,
                   timeout: float = SETTLE_SECONDS_MIN) -> None:
        """Poll ``condition``; fail after ``timeout`` saying what it waited for, and why."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                broken = "\n".join(f"- {problem}" for problem in problems(self.scene)[:20])
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what} ({self.note}); "
                    f"outstanding: {outstanding(self.scene)}; broken so far (first 20):\n"
                    f"{broken}\n--- ackmail logs:\n{_tail(self.installation.processes.logs())}")
            time.sleep(POLL_SECONDS)

    def wait_recorded(self, count: int) -> None:
        """Wait until the database holds at least ``count`` messages."""
        self.wait_until(lambda: self.recorded() >= count, f"{count} messages recorded",
                        self._budget())

    def drained(self) -> None:
        """Wait until every message delivered so far is recorded and out of the INBOX."""
        self.wait_until(lambda: self.recorded() == len(self.scene.backlog.messages)
                        and self.scene.server.list_folder(self.scene.user) == 0,
                        "the INBOX to be drained", self._budget())

    def settle(self) -> None:
        """Wait until every message is recorded and filed and every outcome delivered."""
        self.wait_until(lambda: outstanding(self.scene) is None, "the run to settle",
                        self._budget())

    def _budget(self) -> float:
        return max(SETTLE_SECONDS_MIN,
                   SETTLE_SECONDS_PER_MESSAGE * len(self.scene.backlog.messages))

    def finish(self, poller: AckmailProcess) -> None:
        """Let the run settle, stop ``poller`` as a service manager would (it must exit 0),
        and check every guarantee."""
        self.settle()
        stopped = poller.stop()
        assert stopped.code == 0, f"{stopped.describe()}\n({self.note})"
        self.check()

    def check(self) -> None:
        """Every guarantee of invariants.py, and no traceback in any process's log (a fault
        that passes is a warning; a traceback is a bug), with the logs on failure."""
        logs = self.installation.processes.logs()
        assert_invariants(self.scene, logs, extra=tracebacks(logs))

    def release_leases_of(self, dead_pids: set[int]) -> int:
        """Let outcomes claimed by killed dispatchers be claimed again now.

        A killed dispatcher's lease would run out after DispatchConfig.lease (5 minutes);
        moving its end to the past stands for that wait. Returns how many were released.
        """
        if not dead_pids:
            return 0
        with transaction(self.scene.engine) as session:
            held = session.execute(select(Outcome.id, Outcome.claimed_by).where(
                Outcome.status == OutcomeStatus.SENDING)).all()
            ids = [oid for oid, owner in held if pid_of(owner) in dead_pids]
            if ids:
                session.execute(update(Outcome).where(Outcome.id.in_(ids))
                                .values(claimed_until=utcnow() - timedelta(seconds=1)))
        return len(ids)


def tracebacks(logs: str) -> list[str]:
    """One problem per traceback in ``logs``, naming the log line that introduced it."""
    lines = ["", *logs.splitlines()]
    # A chained exception's traceback follows a blank line: it belongs to the one before.
    return [f"a process logged a traceback after: {lines[n - 1]}"
            for n, line in enumerate(lines) if line.startswith("Traceback ") and lines[n - 1]]


def pid_of(worker: str | None) -> int | None:
    """The pid in a dispatcher's or poller's ``host:pid:random`` id."""
    parts = (worker or "").split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
