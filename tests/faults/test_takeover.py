"""Two ``ackmail poll`` services share one PostgreSQL database: the one polling the mailbox
is killed (SIGKILL) in the middle of a backlog, and the other takes its lease over once it
runs out (``[service] lease_seconds``), finishes the backlog and the mail that follows.
"""

from __future__ import annotations

from sqlalchemy import select

from ingest.store.db import read_session
from ingest.store.models import Lease
from tests.faults.harness import POSTGRES, FaultRun, pid_of
from tests.faults.scale import FaultScale
from tests.servers.ackmail_process import AckmailProcess


def _holder_pid(run: FaultRun) -> int | None:
    """The pid of the poller holding the mailbox's lease."""
    with read_session(run.scene.engine) as session:
        return pid_of(session.scalars(select(Lease.holder)
                                      .where(Lease.holder.is_not(None))).first())


def _held_by(run: FaultRun, pollers: list[AckmailProcess]) -> AckmailProcess:
    run.wait_until(lambda: _holder_pid(run) in {p.pid for p in pollers},
                   "one of the pollers to hold the mailbox's lease")
    return next(p for p in pollers if p.pid == _holder_pid(run))


@POSTGRES
def test_the_other_poller_takes_over_from_one_killed_mid_backlog(
        password_run: FaultRun, scale: FaultScale) -> None:
    run = password_run
    run.deliver(scale.messages)
    pollers = [run.installation.poll(), run.installation.poll()]
    holder = _held_by(run, pollers)
    target = run.rng.randint(1, scale.messages - 1)
    run.wait_recorded(target)

    holder.kill()
    run.release_leases_of({holder.pid})  # its webhooks in flight: as if 5 minutes passed
    (survivor,) = (p for p in pollers if p is not holder)
    run.wait_until(lambda: _holder_pid(run) == survivor.pid, "the survivor to take the lease")
    run.deliver(scale.late_mail, live=True)
    run.finish(survivor)
