"""The mail server goes away under a running ``ackmail poll``: connections reset in the middle
of a FETCH and while the poller waits in IDLE, and Dovecot restarts while a backlog drains.

The poller reaches Dovecot through a TcpProxy (tests/servers/tcp_proxy.py) where a test
needs to cut connections. After the faults the poller must settle on its own, stop
cleanly on SIGTERM, and every guarantee of invariants.py must hold. PostgreSQL store.
"""

from __future__ import annotations

import time

import pytest

from ingest.sources.base import SourceOptions
from tests.faults.conftest import MakeRun
from tests.faults.harness import POSTGRES, RECONNECT_SECONDS, FaultRun
from tests.faults.installation import password_mailbox
from tests.faults.scale import FaultScale
from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot_fixtures import TcpProxyFactory
from tests.servers.tcp_proxy import TcpProxy

MESSAGE_BYTES = 2_700  # a test message with its FETCH framing, roughly
FETCH_BATCH = SourceOptions().first_batch_size  # messages in a session's first FETCH
SESSION_BYTES = 12_000  # more than greeting, login, SELECT and SEARCH answers together
IDLE_SECONDS = (0.8, 1.5)  # after the INBOX is drained the poller is in IDLE by then


@pytest.fixture
def proxy(dovecot: DovecotServer, tcp_proxy_factory: TcpProxyFactory) -> TcpProxy:
    """A proxy in front of Dovecot's IMAPS port."""
    return tcp_proxy_factory(dovecot.host, dovecot.imaps_port)


@pytest.fixture
def proxied_run(make_run: MakeRun, dovecot: DovecotServer, proxy: TcpProxy,
                scale: FaultScale) -> FaultRun:
    """A fault run whose poller reaches Dovecot through ``proxy``."""
    return make_run(dovecot, password_mailbox(dovecot, proxy.port), messages=scale.messages)


def _fetch_budget(run: FaultRun, session_bytes: int) -> int:
    """Bytes to let through before the reset: ``session_bytes`` and part of the next FETCH."""
    left = len(run.scene.backlog.messages) - run.recorded()
    fetched = min(FETCH_BATCH, max(left, 1)) * MESSAGE_BYTES
    return session_bytes + run.rng.randint(2_000, max(2_001, int(0.8 * fetched)))


def _reset_seen(run: FaultRun, proxy: TcpProxy) -> bool:
    """Wait for a session, then for its reset; False if the backlog was done first."""
    done = len(run.scene.backlog.messages)
    run.wait_until(lambda: proxy.live > 0 or run.recorded() == done, "the poller to connect",
                   RECONNECT_SECONDS)
    run.wait_until(lambda: proxy.live == 0 or run.recorded() == done,
                   "the connection to be reset mid-FETCH")
    return proxy.live == 0


@POSTGRES
def test_connections_reset_mid_fetch_lose_and_repeat_nothing(
        proxied_run: FaultRun, proxy: TcpProxy, scale: FaultScale) -> None:
    run = proxied_run
    run.deliver(scale.messages)
    resets = 0

    # The first session is reset inside its first FETCH: counted from its first byte.
    proxy.cut_after_bytes(_fetch_budget(run, SESSION_BYTES))
    poll = run.installation.poll()
    for n in range(scale.fetch_cuts):
        if n:  # later ones inside the next FETCH of a session that has done some work
            run.wait_until(lambda: proxy.live > 0, "the poller to reconnect", RECONNECT_SECONDS)
            proxy.cut_after_bytes(_fetch_budget(run, 0))
        resets += _reset_seen(run, proxy)
        proxy.cut_after_bytes(None)
    run.finish(poll)

    assert resets >= 1, f"no FETCH was cut ({run.note})"


def _cut_in_idle(run: FaultRun, proxy: TcpProxy, late_mail: int) -> None:
    """Reset the waiting session, keep the poller out while mail arrives, then let it in."""
    accepted = proxy.accepted
    proxy.refuse(True)
    proxy.cut()
    run.deliver(late_mail)
    time.sleep(run.rng.uniform(0.2, 1.0))
    proxy.refuse(False)
    run.wait_until(lambda: proxy.accepted > accepted and proxy.live > 0,
                   "the poller to reconnect after the IDLE cut", RECONNECT_SECONDS)


@POSTGRES
def test_connections_reset_in_idle_with_mail_arriving_meanwhile_lose_nothing(
        proxied_run: FaultRun, proxy: TcpProxy, scale: FaultScale) -> None:
    run = proxied_run
    run.deliver(scale.messages)
    poll = run.installation.poll()

    for _ in range(scale.idle_cuts):
        run.drained()
        time.sleep(run.rng.uniform(*IDLE_SECONDS))
        _cut_in_idle(run, proxy, scale.late_mail)
    run.finish(poll)


@POSTGRES
def test_dovecot_restarts_while_the_backlog_drains_lose_and_repeat_nothing(
        password_run: FaultRun, dovecot: DovecotServer, scale: FaultScale) -> None:
    run = password_run
    run.deliver(scale.messages)
    poll = run.installation.poll()
    targets = sorted(run.rng.sample(range(1, scale.messages), scale.restarts))

    for target in targets:
        run.wait_recorded(target)
        dovecot.restart()
    run.deliver(scale.late_mail, live=True)  # and mail that arrives after the last restart
    run.finish(poll)
