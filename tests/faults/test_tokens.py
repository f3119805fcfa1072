"""App-only tokens that expire while ``ackmail poll`` runs, as Exchange ends such sessions.

The identity provider issues tokens that live TOKEN_SECONDS, and the mailbox uses a token
until it expires (``refresh_margin_seconds = 0``). Dovecot, like most servers, does not
end a session when its token expires; Exchange does, so the test does it for it: every
time the session's token has expired, the connection is reset. Each reconnect must sign
in with a fresh token, nothing may be lost or recorded twice, and no sign-in failure
(which would need a person) may be recorded.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from ingest.store.db import read_session
from ingest.store.models import Event
from tests.auth.conftest import APP_ID, APP_SECRET
from tests.faults.conftest import MakeRun
from tests.faults.harness import POSTGRES, RECONNECT_SECONDS, FaultRun
from tests.faults.installation import app_mailbox
from tests.faults.scale import FaultScale
from tests.servers.dovecot_fixtures import DovecotFactory, TcpProxyFactory
from tests.servers.idp import IdentityProvider
from tests.servers.tcp_proxy import TcpProxy

TOKEN_SECONDS = 3


def _issued(idp: IdentityProvider) -> int:
    return len(idp.requests("client_credentials"))


def _end_the_session_when_its_token_expires(run: FaultRun, idp: IdentityProvider,
                                            proxy: TcpProxy) -> None:
    issued = _issued(idp)
    run.wait_until(lambda: proxy.live > 0, "the poller to sign in", RECONNECT_SECONDS)
    time.sleep(TOKEN_SECONDS + run.rng.uniform(0.1, 1.0))  # the session's token has expired
    proxy.cut()
    run.wait_until(lambda: _issued(idp) > issued and proxy.live > 0,
                   "a sign-in with a fresh token", RECONNECT_SECONDS)


@POSTGRES
def test_sessions_ended_when_their_token_expires_sign_in_again_and_lose_nothing(
        make_run: MakeRun, idp: IdentityProvider, dovecot_factory: DovecotFactory,
        tcp_proxy_factory: TcpProxyFactory, scale: FaultScale) -> None:
    server = dovecot_factory(issuer=idp.issuer, public_key_pem=idp.public_key_pem, kid=idp.kid,
                             app_id=APP_ID)
    idp.register_client(APP_ID, secret=APP_SECRET)
    idp.token_lifetime = TOKEN_SECONDS
    proxy = tcp_proxy_factory(server.host, server.imaps_port)
    run = make_run(server, app_mailbox(server, proxy.port, idp, APP_ID, APP_SECRET),
                   messages=scale.messages, user=server.users.shared.address)
    run.deliver(scale.messages)
    poll = run.installation.poll()

    for _ in range(scale.token_expiries):
        _end_the_session_when_its_token_expires(run, idp, proxy)
    run.deliver(scale.late_mail, live=True)
    run.finish(poll)

    with read_session(run.scene.engine) as session:
        failures = session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.type == "auth.failed"))
    assert failures == 0, f"{failures} sign-in failure(s) were recorded ({run.note})"
    assert _issued(idp) > scale.token_expiries
