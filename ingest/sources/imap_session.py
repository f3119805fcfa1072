"""An IMAP session: connect (TLS or STARTTLS), log in (LOGIN, XOAUTH2, OAUTHBEARER), close."""

from __future__ import annotations

import logging
from contextlib import suppress

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from ingest.auth import LoginCredentials, LoginRefused, SaslResponder
from ingest.config import MailboxConfig
from ingest.sources.connect import bearer_mechanism, boundary, tls_context


def imap_greeting(box: MailboxConfig, timeout: float) -> IMAPClient:
    """TCP, TLS when security = 'ssl', and the server's greeting."""
    context = tls_context(box) if box.security == "ssl" else None
    with boundary(box, "connecting"):
        client = IMAPClient(box.host, port=box.port, ssl=box.security == "ssl",
                            ssl_context=context, timeout=timeout)
    client.normalise_times = False  # keep INTERNALDATE's own zone: received_at is UTC-aware
    _quiet_protocol_log(client)
    return client


def _quiet_protocol_log(client: IMAPClient) -> None:
    """imapclient sets imaplib's debug level to its highest so that its own logger sees
    every protocol line; imaplib then builds the repr of every response, message bodies
    included, before that logger drops it: a tenth of the poller's time in a backlog.
    The level is lowered unless that logger would keep the lines."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def imap_starttls(client: IMAPClient, box: MailboxConfig) -> None:
    """Upgrade a plain connection with STARTTLS."""
    with boundary(box, "starting TLS (STARTTLS)"):
        client.starttls(tls_context(box))


def open_imap(box: MailboxConfig, timeout: float) -> IMAPClient:
    """A connected IMAP client, encrypted as the mailbox asks, not yet logged in."""
    client = imap_greeting(box, timeout)
    try:
        if box.security == "starttls":
            imap_starttls(client, box)
    except BaseException:
        close_imap(client)
        raise
    return client


def imap_mechanisms(client: IMAPClient) -> set[str]:
    """The SASL mechanisms the server offers (AUTH=... capabilities)."""
    return {cap.decode().upper()[5:] for cap in client.capabilities()
            if cap.upper().startswith(b"AUTH=")}


def imap_authenticate(client: IMAPClient, box: MailboxConfig,
                      credentials: LoginCredentials) -> str:
    """Log in with LOGIN or a bearer mechanism; returns the mechanism used."""
    with boundary(box, "logging in"):
        try:
            if credentials.kind == "password":
                client.login(credentials.username, credentials.secret.reveal())
                return "LOGIN"
            mechanism = bearer_mechanism(imap_mechanisms(client))
            client.sasl_login(mechanism.value,
                              SaslResponder(mechanism, credentials.username, credentials.secret))
            return mechanism.value
        except LoginError as exc:
            raise LoginRefused(_server_text(exc)) from None


def _server_text(exc: LoginError) -> str:
    # imapclient wraps imaplib's bytes: str() gives "b'[AUTHENTICATIONFAILED] ...'".
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) and len(text) > 3 else text


def close_imap(client: IMAPClient) -> None:
    """Log out if the connection still works, else just close the socket."""
    try:
        client.logout()
    except Exception:  # the connection is being discarded either way
        with suppress(Exception):  # already closed
            client.shutdown()
