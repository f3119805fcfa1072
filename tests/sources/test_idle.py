"""Push: IMAP IDLE wakes the poller at once; without IDLE the poll interval applies."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import Engine, select

from ingest.sources.imap import ImapSource
from ingest.sources.registry import SOURCES
from ingest.store.db import read_session
from ingest.store.models import Checkpoint
from ingest.timeutil import utcnow
from tests.servers.dovecot import DovecotServer
from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_shapes
from tests.sources.conftest import FAST_SOURCE, PollerFactory, imap_mailbox, running, wait_for
from tests.sources.mail import message_count, unrelated


def _recorded(engine: Engine, count: int) -> bool:
    return message_count(engine) == count


class _WaitCounter(ImapSource):
    """Counts how often the poller waits (each IDLE or poll interval is one wait)."""

    waits: ClassVar[int] = 0

    def wait(self, stop: threading.Event) -> None:
        _WaitCounter.waits += 1
        super().wait(stop)


@across_shapes
def test_idle_records_a_delivery_within_two_seconds(
        mail_server: MailServer, engine: Engine, make_poller: PollerFactory) -> None:
    _WaitCounter.waits = 0
    bob = mail_server.users.bob.address
    box = imap_mailbox(mail_server, poll_interval_seconds=3600)
    with running(make_poller(engine, box, registry={**SOURCES, "imap": _WaitCounter})):
        wait_for(lambda: _WaitCounter.waits >= 1, what="the first IDLE")
        time.sleep(0.2)
        mail_server.deliver(bob, unrelated())
        took = wait_for(lambda: message_count(engine) == 1, 10, "the delivery to be recorded")

    assert took < 2.0


def test_idle_is_renewed_before_the_server_limit(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    _WaitCounter.waits = 0
    bob = dovecot.users.bob.address
    quick_renewal = replace(FAST_SOURCE, idle_renew_seconds=0.3)
    with running(make_poller(sqlite_engine, imap_mailbox(dovecot), source=quick_renewal,
                             registry={**SOURCES, "imap": _WaitCounter})):
        wait_for(lambda: _WaitCounter.waits >= 4, 10, "four IDLE renewals")
        dovecot.deliver(bob, unrelated())
        wait_for(lambda: message_count(sqlite_engine) == 1, 10, "the delivery to be recorded")


def test_without_idle_the_poll_interval_finds_new_mail(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    _WaitCounter.waits = 0
    bob = dovecot.users.bob.address
    box = imap_mailbox(dovecot, idle=False, poll_interval_seconds=1)
    with running(make_poller(sqlite_engine, box, registry={**SOURCES, "imap": _WaitCounter})):
        wait_for(lambda: _WaitCounter.waits >= 1, what="the first wait")
        dovecot.deliver(bob, unrelated())
        took = wait_for(lambda: message_count(sqlite_engine) == 1, 10, "the next poll")

    assert 0.0 < took < 2.5


def test_deliveries_right_after_each_record_are_each_noticed_at_once(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    # Each delivery lands while the poller moves the previous message and goes back to
    # IDLE: the window where a server's one EXISTS is easiest to miss.
    bob = dovecot.users.bob.address
    with running(make_poller(sqlite_engine, imap_mailbox(dovecot, poll_interval_seconds=3600))):
        for n in range(1, 11):
            dovecot.deliver(bob, unrelated())
            took = wait_for(functools.partial(_recorded, sqlite_engine, n), 10, f"delivery {n}")
            assert took < 3.0, f"delivery {n} took {took:.1f} s"


def test_each_wait_leaves_a_heartbeat_for_the_health_check(
        dovecot: DovecotServer, sqlite_engine: Engine, make_poller: PollerFactory) -> None:
    _WaitCounter.waits = 0
    quick_renewal = replace(FAST_SOURCE, idle_renew_seconds=0.3)
    with running(make_poller(sqlite_engine, imap_mailbox(dovecot), source=quick_renewal,
                             registry={**SOURCES, "imap": _WaitCounter})):
        wait_for(lambda: _WaitCounter.waits >= 3, 10, "three IDLE renewals")
        first = _state(sqlite_engine)
        wait_for(lambda: _state(sqlite_engine)["heartbeat_at"] != first["heartbeat_at"], 10,
                 "a newer heartbeat")
    state = _state(sqlite_engine)
    assert state["idle"] is True and state["reconnects"] == 0
    assert utcnow() - datetime.fromisoformat(state["heartbeat_at"]) < timedelta(seconds=10)


def _state(engine: Engine) -> dict[str, Any]:
    with read_session(engine) as session:
        return dict(session.scalars(select(Checkpoint.state)).one())
