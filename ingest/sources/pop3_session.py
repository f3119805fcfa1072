"""A POP3 session: connect (TLS or STLS), log in (USER/PASS, AUTH XOAUTH2/OAUTHBEARER), close."""

from __future__ import annotations

import poplib
from contextlib import suppress
from typing import Any

from ingest.auth import LoginCredentials, LoginRefused, SaslResponder
from ingest.config import MailboxConfig
from ingest.sources.connect import ServerThrottled, bearer_mechanism, boundary, tls_context

# poplib refuses lines over 2,048 bytes; real mail (unwrapped HTML) has longer ones.
poplib._MAXLINE = 1 << 20  # type: ignore[attr-defined]

# Cyrus' popminpoll, 1 (minute) in Debian's imapd.conf, refuses a second login within the
# minute with "-ERR [LOGIN-DELAY] Logins must be at least 1 minute apart". The CAPA
# LOGIN-DELAY says how long; for a server that does not say, a minute (Cyrus' unit).
_LOGIN_DELAY = "[LOGIN-DELAY]"
_DEFAULT_LOGIN_DELAY_SECONDS = 60.0


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
            raise _login_refusal(pop, box, _describe_pop3(exc)) from None


def _login_refusal(pop: poplib.POP3, box: MailboxConfig,
                   text: str) -> LoginRefused | ServerThrottled:
    """LoginRefused (the credentials), or ServerThrottled when the server's response code
    (RFC 2449) says the login came too soon after the last."""
    said = f"(-ERR {text.removeprefix('-ERR').strip()})"
    if _LOGIN_DELAY in text.upper():
        delay = pop3_login_delay(pop)
        return ServerThrottled(
            f"mailbox '{box.name}': {box.host} allows a POP3 login only every {delay:.0f} s "
            f"and refused this one {said}; waiting before the next login (set "
            f"poll_interval to {delay:.0f} s or more)", delay)
    return LoginRefused(text)


def pop3_login_delay(pop: poplib.POP3) -> float:
    """The seconds the server wants between logins (CAPA LOGIN-DELAY), else a minute."""
    try:
        value = pop.capa().get("LOGIN-DELAY", [])
        return float(value[0]) if value else _DEFAULT_LOGIN_DELAY_SECONDS
    except (poplib.error_proto, OSError, EOFError, ValueError):
        return _DEFAULT_LOGIN_DELAY_SECONDS


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
