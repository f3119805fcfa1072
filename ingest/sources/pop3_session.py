"""A POP3 session: connect (TLS or STLS), log in (USER/PASS, AUTH XOAUTH2/OAUTHBEARER), close."""

from __future__ import annotations

import poplib
from contextlib import suppress
from typing import Any

from ingest.auth import LoginCredentials, LoginRefused, SaslResponder
from ingest.config import MailboxConfig
from ingest.sources.connect import bearer_mechanism, boundary, tls_context

# poplib refuses lines over 2,048 bytes; real mail (unwrapped HTML) has longer ones.
poplib._MAXLINE = 1 << 20  # type: ignore[attr-defined]


def pop3_greeting(box: MailboxConfig, timeout: float) -> poplib.POP3:
    """TCP, TLS when security = 'ssl', and the server's greeting."""
    with boundary(box, "connecting"):
        if box.security == "ssl":
            return poplib.POP3_SSL(box.host, box.port, context=tls_context(box), timeout=timeout)
        return poplib.POP3(box.host, box.port, timeout=timeout)


def pop3_stls(pop: poplib.POP3, box: MailboxConfig) -> None:
    """Upgrade a plain connection with STLS."""
    with boundary(box, "starting TLS (STLS)"):
        pop.stls(tls_context(box))


def open_pop3(box: MailboxConfig, timeout: float) -> poplib.POP3:
    """A connected POP3 session, encrypted as the mailbox asks, not yet logged in."""
    pop = pop3_greeting(box, timeout)
    try:
        if box.security == "starttls":
            pop3_stls(pop, box)
    except BaseException:
        close_pop3(pop, commit=False)
        raise
    return pop


def pop3_mechanisms(pop: poplib.POP3) -> set[str]:
    """The SASL mechanisms the server lists in CAPA."""
    try:
        return {name.upper() for name in pop.capa().get("SASL", [])}
    except poplib.error_proto:  # CAPA is optional (RFC 2449)
        return set()


def pop3_authenticate(pop: poplib.POP3, box: MailboxConfig,
                      credentials: LoginCredentials) -> str:
    """USER/PASS or AUTH with a bearer token; returns the mechanism used."""
    with boundary(box, "logging in"):
        try:
            if credentials.kind == "password":
                pop.user(credentials.username)
                pop.pass_(credentials.secret.reveal())
                return "USER/PASS"
            mechanism = bearer_mechanism(pop3_mechanisms(pop))
            respond = SaslResponder(mechanism, credentials.username, credentials.secret)
            answer = pop._shortcmd(  # type: ignore[attr-defined]
                f"AUTH {mechanism} {respond.encoded()}")
            if not answer.startswith(b"+OK"):
                # A refusal arrives as a '+ <challenge>' continuation, which poplib takes for
                # success: the responder's empty answer gets the real -ERR.
                pop._shortcmd(respond.encoded(answer))  # type: ignore[attr-defined]
            return mechanism.value
        except poplib.error_proto as exc:
            raise LoginRefused(_describe_pop3(exc)) from None


def _describe_pop3(exc: poplib.error_proto) -> str:
    value: Any = exc.args[0] if exc.args else exc
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def close_pop3(pop: poplib.POP3, *, commit: bool) -> None:
    """QUIT (which makes DELEs final) when ``commit``, else drop the connection: the server
    then forgets the deletions, which is what a failed batch needs."""
    if commit:
        with suppress(OSError, poplib.error_proto, EOFError):
            pop.quit()
            return
    with suppress(OSError):
        pop.close()
