"""A shared mailbox read with a delegate's sign-in: ``username`` is the shared address (the
XOAUTH2 ``user=``), ``[oauth] account`` the user who signs in and has access to it."""

from __future__ import annotations

from sqlalchemy import Engine

from ingest.auth import TokenProviders, auth_status
from ingest.check import check_mailbox
from ingest.config.reader import Secret
from tests.auth.conftest import ALICE, SHARED, sign_in_by_device_code
from tests.servers.dovecot import DovecotServer
from tests.servers.idp import IdentityProvider
from tests.sources import conftest as shared
from tests.sources.conftest import OAuthMailbox, PollerFactory, poll_once
from tests.sources.mail import message_count, unrelated

# Fixtures shared with tests/sources, named here so pytest finds them for this module.
make_poller = shared.make_poller
sqlite_engine = shared.sqlite_engine
oauth_server = shared.oauth_server
oauth_mailbox = shared.oauth_mailbox
token_providers = shared.token_providers


def test_a_delegate_signs_in_polls_the_shared_mailbox_and_every_command_shows_both(
        idp: IdentityProvider, oauth_server: DovecotServer, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders, sqlite_engine: Engine,
        make_poller: PollerFactory) -> None:
    box = oauth_mailbox("oauth2-delegated", username=SHARED, oauth={"account": ALICE})
    sign_in_by_device_code(idp, token_providers.for_subject(box), upn=ALICE)
    oauth_server.deliver(SHARED, unrelated())

    summary = poll_once(make_poller, sqlite_engine, box, providers=token_providers)
    report = check_mailbox(box, token_providers, timeout=5)
    status = auth_status(box, state_dir=token_providers.state_dir,
                         cache_key=Secret("k" * 32, "test"))

    assert summary.mailboxes[0].error is None and message_count(sqlite_engine) == 1
    assert oauth_server.list_folder(ALICE) == 0  # alice's own mailbox was not the one read
    assert report.ok, "\n".join(report.lines())
    details = {step.step: step.detail for step in report.steps}
    assert f"access token for {ALICE}" in details["token"]
    assert f"logged in as {SHARED}" in details["login"]
    assert (status.mailbox, status.account, status.signed_in) == (SHARED, ALICE, True)

