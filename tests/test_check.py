"""``check``: every step against the real Dovecot (and Cyrus), and the step named when one
fails."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from ingest.auth import TokenProviders
from ingest.check import CheckReport, check_mailbox
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from tests.auth.conftest import APP_ID, sign_in_by_device_code
from tests.servers.dovecot import DovecotServer
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.servers.mail_server import MailServer
from tests.servers.matrix_fixtures import across_servers
from tests.servers.tls import make_test_pki
from tests.sources import conftest as shared
from tests.sources.conftest import GraphMailbox, OAuthMailbox, imap_mailbox, pop3_mailbox
from tests.sources.mail import unrelated

# Fixtures shared with tests/sources, named here so pytest finds them for this module.
oauth_server = shared.oauth_server
oauth_mailbox = shared.oauth_mailbox
token_providers = shared.token_providers
graph_mailbox = shared.graph_mailbox


def _check(box: MailboxConfig, providers: TokenProviders | None = None) -> CheckReport:
    return check_mailbox(box, providers or TokenProviders(Path("/nonexistent"), None),
                         timeout=5)


def _text(report: CheckReport) -> str:
    return "\n".join(report.lines())


@across_servers
def test_a_working_mailbox_passes_every_step(mail_server: MailServer) -> None:
    mail_server.deliver_many(mail_server.users.bob.address, [unrelated(), unrelated()])

    report = _check(imap_mailbox(mail_server))

    assert report.ok, _text(report)
    assert [s.step for s in report.steps] == ["DNS", "TCP connect", "TLS", "greeting",
                                              "password", "login", "folder"]
    assert "2 messages" in report.steps[-1].detail
    assert any("does not exist yet" in note for note in report.steps[-1].notes)
    password = mail_server.users.bob.password
    assert password is not None and password.reveal() not in _text(report)


@across_servers
def test_starttls_and_pop3_pass(mail_server: MailServer) -> None:
    imap = _check(imap_mailbox(mail_server, security="starttls", port=mail_server.imap_port))
    pop3 = _check(pop3_mailbox(mail_server))

    assert imap.ok and pop3.ok, _text(imap) + _text(pop3)
    assert "STARTTLS" in [s.step for s in imap.steps]
    assert "in the maildrop" in pop3.steps[-1].detail


def test_a_wrong_password_fails_the_login_step(dovecot: DovecotServer) -> None:
    bob = dovecot.users.bob
    assert bob.password is not None
    box = imap_mailbox(dovecot, password=replace(bob.password, value="wrong-password-1"))

    report = _check(box)

    assert report.failed_step == "login"
    assert "user name or password" in report.steps[-1].detail
    assert "wrong-password-1" not in _text(report)


def test_a_wrong_ca_fails_the_tls_step_with_the_fix(
        dovecot: DovecotServer, tmp_path: Path) -> None:
    box = imap_mailbox(dovecot, ca_file=make_test_pki(tmp_path / "other").ca_pem)

    report = _check(box)

    assert report.failed_step == "TLS"
    assert "ca_file" in report.steps[-1].detail


def test_a_closed_port_fails_the_tcp_step(dovecot: DovecotServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        closed = holder.getsockname()[1]

    report = _check(imap_mailbox(dovecot, port=closed))

    assert report.failed_step == "TCP connect"
    assert "connection refused" in report.steps[-1].detail


def test_an_unknown_host_fails_the_dns_step(dovecot: DovecotServer) -> None:
    report = _check(imap_mailbox(dovecot, host="mail.invalid"))

    assert (report.failed_step, len(report.steps)) == ("DNS", 1)


def test_a_missing_folder_fails_the_folder_step(dovecot: DovecotServer) -> None:
    report = _check(imap_mailbox(dovecot, folder="Approvals"))

    assert report.failed_step == "folder"
    assert "INBOX" in report.steps[-1].detail  # the folders the server has


def test_a_path_the_server_cannot_hold_fails_the_folder_step_naming_the_delimiter(
        dovecot: DovecotServer) -> None:
    report = _check(imap_mailbox(dovecot, processed_folder="ackmail/v1.2"))

    assert report.failed_step == "folder"
    detail = report.steps[-1].detail
    assert "'ackmail/v1.2'" in detail and "delimiter is '.'" in detail
    assert "write 'ackmail/v1/2'" in detail


def test_an_app_without_the_mailbox_grant_fails_the_login_step(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-app", username="alice@example.test")

    report = _check(box, token_providers)

    assert report.failed_step == "login"
    assert "-ImapEnabled $true" in report.steps[-1].detail
    assert [s.step for s in report.steps][-2:] == ["token", "login"]


def test_a_token_for_another_api_is_explained_by_its_claims(
        oauth_mailbox: OAuthMailbox, token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-app",
                        oauth={"scopes": ("https://graph.microsoft.com/.default",)})

    report = _check(box, token_providers)

    assert report.failed_step == "login"
    assert any("not https://outlook.office365.com" in note for note in report.steps[-1].notes)
    assert "eyJ" not in _text(report)  # no token, not even its header


def test_a_mailbox_never_signed_in_fails_the_token_step(
        idp: IdentityProvider, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders) -> None:
    report = _check(oauth_mailbox("oauth2-delegated"), token_providers)

    assert report.failed_step == "token"
    assert "ackmail auth login alice" in report.steps[-1].detail


def test_a_maildir_is_checked_on_disk(tmp_path: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    (tmp_path / "Maildir" / "new" / "1.msg").write_bytes(unrelated())

    good = _check(MailboxConfig(name="local", protocol="maildir", path=tmp_path / "Maildir"))
    bad = _check(MailboxConfig(name="local", protocol="maildir", path=tmp_path))

    assert good.ok and "1 new messages" in good.steps[0].detail
    assert bad.failed_step == "Maildir" and "fix path" in bad.steps[0].detail


def _next_run(providers: TokenProviders) -> TokenProviders:
    """The token providers of another ``ackmail`` process on the same state directory."""
    return TokenProviders(providers.state_dir, Secret("k" * 32, "test"), timeout=10.0)


def test_a_changed_client_secret_fails_the_token_step_though_the_cache_would_log_in(
        idp: IdentityProvider, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-app")
    token_providers.for_subject(box).token()  # a poll cached a token
    assert _check(box, token_providers).ok
    assert box.oauth is not None
    wrong = replace(box, oauth=replace(box.oauth, client_secret=Secret("wr0ng-secret", "test")))

    report = _check(wrong, _next_run(token_providers))

    assert report.failed_step == "token"
    assert "the client secret is wrong" in report.steps[-1].detail
    assert "wr0ng-secret" not in _text(report)
    # The poller, run with the same settings, still signs in with its cached token.
    assert _next_run(token_providers).for_subject(wrong).token().from_cache


def test_check_redeems_the_refresh_token_and_keeps_the_rotated_one(
        idp: IdentityProvider, oauth_mailbox: OAuthMailbox,
        token_providers: TokenProviders) -> None:
    box = oauth_mailbox("oauth2-delegated")
    sign_in_by_device_code(idp, token_providers.for_subject(box))
    redeemed = len(idp.requests("refresh_token"))

    first = _check(box, _next_run(token_providers))
    second = _check(box, _next_run(token_providers))  # the first run's rotated token works

    assert first.ok and second.ok, _text(first) + _text(second)
    assert len(idp.requests("refresh_token")) == redeemed + 2
    assert "new access token for alice" in first.steps[4].detail


def test_a_graph_mailbox_shows_the_tokens_roles_the_mailbox_and_the_folders_count(
        graph: GraphServer, graph_mailbox: GraphMailbox, token_providers: TokenProviders) -> None:
    box = graph_mailbox(processed_folder="Inbox/Done")
    graph.deliver_many(box.username, [unrelated() for _ in range(3)])

    report = _check(box, token_providers)

    assert report.ok, _text(report)
    assert [step.step for step in report.steps] == ["token", "mailbox", "folder"]
    token, mailbox, folder = report.steps
    assert "audience https://graph.microsoft.com, roles Mail.ReadWrite" in token.detail
    assert f"opened mailbox {box.username}" in mailbox.detail
    assert folder.detail == "'Inbox' found; 3 messages"
    assert folder.notes == ("'Inbox/Done' does not exist yet; the first poll creates it",)
    assert graph.mailbox(box.username).find("Inbox/Done") is None  # check changes nothing


def test_a_graph_mailbox_the_app_is_not_scoped_to_fails_the_mailbox_step_with_the_fix(
        graph: GraphServer, graph_mailbox: GraphMailbox, token_providers: TokenProviders) -> None:
    graph.scope_app(APP_ID, {"elsewhere@example.test"})

    report = _check(graph_mailbox(), token_providers)

    assert report.failed_step == "mailbox"
    detail = report.steps[-1].detail
    assert "Access is denied. Check credentials and try again." in detail
    assert '-Role "Application Mail.ReadWrite" -CustomResourceScope' in detail
    assert "eyJ" not in _text(report)  # claims are described, the token is never shown
