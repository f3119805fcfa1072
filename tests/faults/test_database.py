"""PostgreSQL goes away for 10 s under a running ``ackmail poll``, and comes back.

The poller reaches the database through a TcpProxy: at a random point of the backlog
(every other time while its dispatcher waits for a webhook's answer) every live connection
is reset and every new one refused for DATABASE_CUT_SECONDS, then the proxy lets
connections through again. Messages in hand stay on the server and are retried; nothing
is lost, quarantined or recorded twice, and every webhook is delivered.
"""

from __future__ import annotations

import time

from tests.faults.conftest import MakeRun
from tests.faults.harness import POSTGRES, FaultRun
from tests.faults.installation import password_mailbox
from tests.faults.scale import FaultScale
from tests.servers.dovecot import DovecotServer
from tests.servers.fault_fixtures import through_proxy
from tests.servers.http_receiver import HANG
from tests.servers.tcp_proxy import TcpProxy

DATABASE_CUT_SECONDS = 10.0


def _hang_the_next_webhook(run: FaultRun, late_mail: int) -> None:
    """Make the receiver hold the dispatcher's next webhook (it times out after 5 s), and
    wait until it does: the dispatcher is in the middle of a round, holding its claims."""
    receiver = run.scene.receiver
    seen = len(receiver.received)
    receiver.answer_next(HANG)
    run.deliver(late_mail, live=True)  # replies among them: there is something to deliver
    run.wait_until(lambda: len(receiver.received) > seen, "the dispatcher to send a webhook")


def _cut_database(proxy: TcpProxy) -> None:
    """Reset every connection and refuse new ones for DATABASE_CUT_SECONDS."""
    proxy.refuse(True)
    proxy.cut()
    time.sleep(DATABASE_CUT_SECONDS)
    proxy.refuse(False)


@POSTGRES
def test_the_database_gone_for_10_s_loses_quarantines_and_repeats_nothing(
        make_run: MakeRun, dovecot: DovecotServer, db_url: str, pg_proxy: TcpProxy,
        scale: FaultScale) -> None:
    run = make_run(dovecot, password_mailbox(dovecot, dovecot.imaps_port),
                   messages=scale.messages, database_url=through_proxy(db_url, pg_proxy))
    run.deliver(scale.messages)
    targets = sorted(run.rng.sample(range(1, scale.messages), scale.database_cuts))
    poll = run.installation.poll()

    for n, target in enumerate(targets):
        run.wait_recorded(target)
        if n % 2:  # every other cut while the dispatcher waits for a webhook's answer
            _hang_the_next_webhook(run, scale.late_mail)
        _cut_database(pg_proxy)
    run.deliver(scale.late_mail, live=True)
    run.finish(poll)
