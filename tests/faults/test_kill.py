"""SIGKILL a real ``ackmail poll`` at random points of a backlog, again and again.

Each round starts a poller and kills it (SIGKILL, no chance to clean up) at a point drawn
from the seed: while it starts and logs in, after a random number of messages, or while
its dispatcher is delivering webhooks. A last ``poll --once`` then drains what is left,
and every guarantee is checked. Runs on SQLite and on PostgreSQL, on every server shape of
the matrix (three Dovecot namespaces and Cyrus), and through Microsoft Graph (the Graph test
server).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select

from ingest.store.db import read_session
from ingest.store.models import Outcome, OutcomeStatus
from tests.auth.conftest import APP_ID, APP_SECRET, SHARED
from tests.faults.conftest import MakeRun
from tests.faults.harness import FaultRun
from tests.faults.installation import LEASE_SECONDS, graph_mailbox, password_mailbox
from tests.faults.scale import FaultScale
from tests.servers.ackmail_process import AckmailProcess
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_shapes

STARTUP_SECONDS = 2.5  # python start, config, login: a kill in here lands before any message
DISPATCH_WAIT_SECONDS = 12.0  # the poller's dispatcher runs every 5 s
POINTS = ("starting", "recording", "dispatching")


def _delivered(run: FaultRun) -> int:
    with read_session(run.scene.engine) as session:
        return int(session.scalar(select(func.count()).select_from(Outcome).where(
            Outcome.status == OutcomeStatus.DELIVERED)) or 0)


def _reached(condition: Callable[[], bool], poll: AckmailProcess, limit: float) -> None:
    """Wait for ``condition`` while the poller runs; at ``limit`` the kill happens anyway."""
    deadline = time.monotonic() + limit
    while not condition() and poll.alive and time.monotonic() < deadline:
        time.sleep(0.02)


def _kill_point(run: FaultRun, poll: AckmailProcess, point: str, rounds_left: int) -> None:
    """Wait for the chosen point of this round."""
    rng = run.rng
    if point == "starting":
        time.sleep(rng.uniform(0.0, STARTUP_SECONDS))
    elif point == "recording":
        recorded = run.recorded()
        left = len(run.scene.backlog.messages) - recorded
        if left <= 0:  # an earlier round drained the backlog: any moment will do
            time.sleep(rng.uniform(0.0, STARTUP_SECONDS))
            return
        target = recorded + rng.randint(1, max(1, 2 * left // (rounds_left + 1)))
        _reached(lambda: run.recorded() >= target, poll, 60.0)
    else:
        before = _delivered(run)
        _reached(lambda: _delivered(run) > before, poll, DISPATCH_WAIT_SECONDS)
    time.sleep(rng.uniform(0.0, 0.05))  # not always right at the moment it was seen


def _points(run: FaultRun, kills: int) -> list[str]:
    """Every kind of point at least once (when there are enough kills), in a seeded order."""
    chosen = [POINTS[n % len(POINTS)] for n in range(kills)]
    run.rng.shuffle(chosen)
    return chosen


def _kill_and_drain(run: FaultRun, scale: FaultScale) -> None:
    """Deliver the backlog, kill pollers at seeded points, drain it once more, check."""
    run.deliver(scale.backlog)
    killed: set[int] = set()
    rounds: list[str] = []

    points = _points(run, scale.kills)
    for n, point in enumerate(points):
        poll = run.installation.poll()
        _kill_point(run, poll, point, len(points) - n)
        assert poll.alive, (f"round {n + 1} ({point}): the poller ended on its own with exit "
                            f"{poll.code} ({run.note}):\n{poll.output()[-3000:]}")
        poll.kill()
        killed.add(poll.pid)
        rounds.append(f"{point}: killed at {run.recorded()} recorded, {_delivered(run)} delivered")
    released = run.release_leases_of(killed)
    if run.scene.engine.dialect.name == "postgresql":
        time.sleep(LEASE_SECONDS)  # the last killed poller's mailbox lease runs out
    last = run.installation.run("poll", "--once")

    print("\n".join(rounds), f"\n{released} outcome leases released")
    assert last.code == 0, f"{last.describe()}\n({run.note}; rounds: {rounds})"
    run.check()


@across_shapes
def test_sigkill_at_random_points_records_decides_and_delivers_everything_once(
        make_run: MakeRun, mail_server: MailServer, scale: FaultScale) -> None:
    run = make_run(mail_server, password_mailbox(mail_server, mail_server.imaps_port),
                   messages=scale.backlog)
    _kill_and_drain(run, scale)


def test_sigkill_of_a_microsoft_graph_poller_records_decides_and_delivers_everything_once(
        make_run: MakeRun, graph: GraphServer, idp: IdentityProvider, scale: FaultScale) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    run = make_run(graph, graph_mailbox(graph, idp, APP_ID, APP_SECRET),
                   messages=scale.backlog, user=SHARED)
    _kill_and_drain(run, scale)
