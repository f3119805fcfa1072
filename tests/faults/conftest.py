"""Fixtures for the fault tests: the run's scale and seed, and ready-made fault runs.

``make_run(server, mailbox, messages=N)`` registers requests for N messages in the test's database,
writes an installation whose processes use ``database_url`` (default: the same database;
the database test passes a URL through its proxy), and returns the FaultRun. The
servers (Dovecot, PostgreSQL, the webhook receiver) and every ``ackmail`` process are
stopped when the test ends, pass or fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.faults.backlog import register_requests
from tests.faults.harness import FaultRun
from tests.faults.installation import install, password_mailbox
from tests.faults.invariants import FaultServer, Scene
from tests.faults.scale import SCALE_ENV, SEED_ENV, FaultScale, current_scale, seeded_random
from tests.servers.ackmail_process import AckmailProcesses
from tests.servers.dovecot import DovecotServer
from tests.servers.graph import GraphServer
from tests.servers.http_receiver import HttpReceiver

MakeRun = Callable[..., FaultRun]


@pytest.fixture
def scale() -> FaultScale:
    """The numbers of this run ($ACKMAIL_FAULTS: ci by default, or full)."""
    try:
        return current_scale()
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def seeded() -> tuple[int, random.Random]:
    """This test's seed and its random generator ($ACKMAIL_FAULTS_SEED replays a run)."""
    try:
        return seeded_random()
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def make_run(engine: Engine, db_url: str, http_receiver: HttpReceiver,
             ackmail_processes: AckmailProcesses, tmp_path: Path, scale: FaultScale,
             seeded: tuple[int, random.Random]) -> MakeRun:
    """``make_run(server, mailbox, messages=N, user=..., database_url=...)``: a fault run
    (``user`` is bob on Dovecot unless given; a Graph server needs it)."""
    seed, rng = seeded
    note = (f"seed {seed}, scale {scale.name}: replay with {SEED_ENV}={seed} "
            f"{SCALE_ENV}={scale.name}")

    def make(server: FaultServer, mailbox: tuple[str, dict[str, str]], *, messages: int,
             user: str | None = None, database_url: str | None = None) -> FaultRun:
        backlog = register_requests(engine, messages)
        installation = install(tmp_path / "installation", mailbox, database_url or db_url,
                               http_receiver.url, ackmail_processes)
        if user is None:  # the mail servers of the matrix have bob; a Graph run names its user
            assert not isinstance(server, GraphServer), "a Graph fault run needs user="
            user = server.users.bob.address
        scene = Scene(engine, backlog, server, user, http_receiver, note)
        return FaultRun(installation, scene, rng)

    return make


@pytest.fixture
def password_run(make_run: MakeRun, dovecot: DovecotServer, scale: FaultScale) -> FaultRun:
    """A fault run on bob's INBOX, reached directly (no proxy), with a password, for
    ``scale.messages`` messages."""
    return make_run(dovecot, password_mailbox(dovecot, dovecot.imaps_port),
                    messages=scale.messages)
