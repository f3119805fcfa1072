"""Pollers sharing mailboxes on one PostgreSQL database through leases, on a real Dovecot.

Two pollers split four folders 2/2, one that starts later gets its share, a lost lease
stops its worker, a killed ``ackmail poll`` is taken over, ``poll --once`` names the
holder of what it could not claim. PostgreSQL only, as leases are.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, make_url, select

from ingest.config import MailboxConfig
from ingest.poller.service import Poller
from ingest.store.db import make_engine, read_session
from ingest.store.leases import LeaseBook
from ingest.store.models import Message, PollerProcess
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import TcpProxyFactory
from tests.sources import conftest as shared
from tests.sources.conftest import PollerFactory, imap_mailbox, running, settings_for, wait_for
from tests.sources.mail import unrelated
from tests.store.test_leases import KEYS, LEASE, held_by, holders, on_postgresql, set_lease

make_poller = shared.make_poller
pytestmark = pytest.mark.postgres


def holder_of(poller: Poller) -> str:
    book = poller.keeper.book
    assert isinstance(book, LeaseBook)
    return book.holder


@pytest.fixture
def boxes(dovecot: DovecotServer) -> list[MailboxConfig]:
    """Four folders of bob's, each its own [[mailbox]] (box1 reads in1, files into done1...)."""
    for _mailbox, folder in KEYS:
        dovecot.create_folder(dovecot.users.bob.address, folder)
    return [imap_mailbox(dovecot, name=name, folder=folder,
                         processed_folder=folder.replace("in", "done"))
            for name, folder in KEYS]


@pytest.fixture
def second_engine(db_url: str, engine: Engine) -> Iterator[Engine]:
    """Another connection pool on the same database, as another poller process has."""
    other = make_engine(db_url)
    yield other
    other.dispose()


def _poller(make_poller: PollerFactory, engine: Engine, boxes: list[MailboxConfig],
            tmp_path: Path, **options: object) -> Poller:
    return make_poller(engine, *boxes,
                       settings=settings_for(tmp_path, *boxes, lease_seconds=LEASE), **options)


def _deliver(dovecot: DovecotServer, count: int) -> None:
    for _mailbox, folder in KEYS:
        dovecot.deliver_many(dovecot.users.bob.address,
                             [unrelated(folder) for _ in range(count)], folder)


def _recorded(engine: Engine) -> dict[str, int]:
    with read_session(engine) as session:
        return dict(session.execute(
            select(Message.mailbox, func.count()).group_by(Message.mailbox)).all())


def _split(engine: Engine, *pollers: Poller) -> list[int]:
    return [len(held_by(engine, holder_of(p))) for p in pollers]


@on_postgresql
def test_two_pollers_share_four_mailboxes_and_record_every_message_once(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        second_engine: Engine, make_poller: PollerFactory, tmp_path: Path) -> None:
    _deliver(dovecot, 3)
    first = _poller(make_poller, engine, boxes, tmp_path)
    second = _poller(make_poller, second_engine, boxes, tmp_path)

    with running(first), running(second):
        wait_for(lambda: _split(engine, first, second) == [2, 2], 30, "a 2/2 split")
        _deliver(dovecot, 2)
        wait_for(lambda: _recorded(engine) == {name: 5 for name, _ in KEYS}, 30,
                 "every message")
        assert _split(engine, first, second) == [2, 2]

    bob = dovecot.users.bob.address
    assert [(dovecot.list_folder(bob, f), dovecot.list_folder(bob, f.replace("in", "done")))
            for _, f in KEYS] == [(0, 5)] * 4
    summaries = [*first.summary().mailboxes, *second.summary().mailboxes]
    assert sum(s.ignored for s in summaries) == 20
    assert sum(s.duplicates for s in summaries) == 0  # a lease goes back only once drained
    assert holders(engine) == {}  # both released everything on stop


def _registered(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(PollerProcess)) or 0)


@on_postgresql
def test_two_pollers_started_together_each_claim_half_from_the_first_round(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        second_engine: Engine, make_poller: PollerFactory, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ingest.store.leases")
    # A longer lease than the other tests': the first waits a heartbeat interval (2 s here)
    # for the others before it claims, and a busy machine starts the second slowly.
    settings = settings_for(tmp_path, *boxes, lease_seconds=6)
    first = make_poller(engine, *boxes, settings=settings)
    second = make_poller(second_engine, *boxes, settings=settings)

    with running(first):
        # The first has said it is alive (a lone poller would claim all four right now).
        wait_for(lambda: _registered(engine) == 1, 30, "the first poller's heartbeat")
        with running(second):
            wait_for(lambda: sum(_split(engine, first, second)) == 4, 30, "every claim")
            assert _split(engine, first, second) == [2, 2]
            time.sleep(4)  # two heartbeats: nothing moves
            assert _split(engine, first, second) == [2, 2]
    assert "fair share" not in caplog.text  # no lease was handed back to even them out
    assert caplog.text.count(f"claimed by {holder_of(first)}") == 2


@on_postgresql
def test_a_poller_that_starts_later_gets_its_fair_share(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        second_engine: Engine, make_poller: PollerFactory, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ingest.store.leases")
    first = _poller(make_poller, engine, boxes, tmp_path)
    second = _poller(make_poller, second_engine, boxes, tmp_path)

    with running(first):
        wait_for(lambda: _split(engine, first) == [4], 30, "the first poller's claims")
        with running(second):
            wait_for(lambda: _split(engine, first, second) == [2, 2], 30, "a 2/2 split")
            assert caplog.text.count(f"released by {holder_of(first)} (fair share is 2 of 4)") == 2
        # the second handed its leases back on stop: the first takes them at its next turn
        wait_for(lambda: _split(engine, first) == [4], 30, "the first poller's take-back")
        assert caplog.text.count(f"released by {holder_of(second)} (stopping)") == 2


@on_postgresql
def test_a_lost_lease_stops_its_worker(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        make_poller: PollerFactory, tmp_path: Path) -> None:
    poller = _poller(make_poller, engine, boxes[:2], tmp_path)
    bob = dovecot.users.bob.address

    with running(poller):
        wait_for(lambda: _split(engine, poller) == [2], 30, "the claims")
        set_lease(engine, "box2", holder="elsewhere:1:00000000",
                   expires_at=func.now() + timedelta(hours=1))
        wait_for(lambda: list(poller.keeper.running) == [KEYS[0]]
                 and not poller.keeper.stopping, 30, "box2's worker to end")
        dovecot.deliver(bob, unrelated(), "in2")
        dovecot.deliver(bob, unrelated(), "in1")
        wait_for(lambda: _recorded(engine) == {"box1": 1}, 30, "box1's message")
        assert _recorded(engine) == {"box1": 1}  # box2's worker ended: nothing reads in2

    assert dovecot.list_folder(bob, "in2") == 1
    assert holders(engine) == {"box2": "elsewhere:1:00000000"}


@on_postgresql
def test_leases_not_renewed_for_a_lease_period_stop_their_workers_until_claimed_again(
        dovecot: DovecotServer, boxes: list[MailboxConfig], db_url: str, engine: Engine,
        make_poller: PollerFactory, tmp_path: Path, tcp_proxy_factory: TcpProxyFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    url = make_url(db_url)
    assert url.host and url.port
    proxy = tcp_proxy_factory(url.host, url.port)
    behind_proxy = make_engine(url.set(port=proxy.port).render_as_string(hide_password=False))
    poller = _poller(make_poller, behind_proxy, boxes[:1], tmp_path)

    try:
        with running(poller):
            wait_for(lambda: _split(engine, poller) == [1], 30, "the claim")
            proxy.refuse(True)
            proxy.cut()
            wait_for(lambda: not poller.keeper.running and not poller.keeper.stopping, 30,
                     "the worker to stop")
            assert "mailbox 'box1': its lease could not be renewed for" in caplog.text
            proxy.refuse(False)
            wait_for(lambda: _split(engine, poller) == [1], 30, "the claim again")
            dovecot.deliver(dovecot.users.bob.address, unrelated(), "in1")
            wait_for(lambda: _recorded(engine) == {"box1": 1}, 30, "box1's message")
    finally:
        behind_proxy.dispose()


def _config(path: Path, boxes: list[MailboxConfig]) -> Path:
    """The four [[mailbox]] tables of ``boxes`` in an ackmail.toml, bob's password from env."""
    tables = []
    for box in boxes:
        keys = {"name": box.name, "protocol": box.protocol, "host": box.host, "port": box.port,
                "ca_file": str(box.ca_file), "username": box.username, "folder": box.folder,
                "processed_folder": box.processed_folder, "poll_interval": 1}
        lines = [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
        tables.append("\n".join(["[[mailbox]]", *lines, 'password = { env = "BOB_PASSWORD" }']))
    path.write_text("\n\n".join([
        f'[security]\ntoken_secret = "lease-test-secret"\ncache_key = "{"c" * 32}"',
        f"[service]\nlease_seconds = {LEASE}", *tables]) + "\n")
    return path


@pytest.fixture
def poll_process(dovecot: DovecotServer, boxes: list[MailboxConfig], db_url: str,
                 engine: Engine, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``ackmail poll`` in its own process over the four folders; killed after the test."""
    password = dovecot.users.bob.password
    assert password is not None
    env = os.environ | {"ACKMAIL_CONFIG": str(_config(tmp_path / "ackmail.toml", boxes)),
                        "ACKMAIL_DATABASE_URL": db_url, "BOB_PASSWORD": password.reveal()}
    with (tmp_path / "poll.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "ingest", "poll", "--no-dispatch"],
                                   env=env, stdout=log, stderr=log, text=True)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(30)


@on_postgresql
def test_a_killed_poller_s_mailboxes_are_taken_over_within_the_lease(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        second_engine: Engine, make_poller: PollerFactory, tmp_path: Path,
        poll_process: subprocess.Popen[str], caplog: pytest.LogCaptureFixture) -> None:
    wait_for(lambda: len(holders(engine)) == 4, 60, "the poll process's claims")
    survivor = _poller(make_poller, second_engine, boxes, tmp_path)

    with running(survivor):
        wait_for(lambda: _split(engine, survivor) == [2], 30, "a 2/2 split")
        poll_process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        poll_process.wait(10)
        wait_for(lambda: _split(engine, survivor) == [4], LEASE + 10, "the take-over")
        took = time.monotonic() - killed
        _deliver(dovecot, 1)
        wait_for(lambda: _recorded(engine) == {name: 1 for name, _ in KEYS}, 30,
                 "every message")

    print(f"taken over {took:.1f} s after SIGKILL (lease {LEASE} s)")
    assert caplog.text.count(f"taken over by {holder_of(survivor)} from poller ") == 2
    assert sum(s.duplicates for s in survivor.summary().mailboxes) == 0


@on_postgresql
def test_poll_once_drains_what_it_can_claim_and_names_the_holder_of_the_rest(
        dovecot: DovecotServer, boxes: list[MailboxConfig], engine: Engine,
        second_engine: Engine, make_poller: PollerFactory, tmp_path: Path) -> None:
    _deliver(dovecot, 1)
    service = _poller(make_poller, engine, boxes[:2], tmp_path)

    with running(service):
        wait_for(lambda: _split(engine, service) == [2], 30, "the service's claims")
        summary = _poller(make_poller, second_engine, boxes, tmp_path, once=True).run()
        assert [(s.mailbox, s.ignored, s.held_by) for s in summary.mailboxes] == [
            ("box1", 0, holder_of(service)), ("box2", 0, holder_of(service)),
            ("box3", 1, None), ("box4", 1, None)]
        assert not summary.failed
        assert set(holders(engine)) == {"box1", "box2"}  # box3 and box4 went back
