"""SASL for bearer tokens: the one responder the IMAP, POP3 and SMTP logins use.

XOAUTH2 is Google's and Microsoft's format; OAUTHBEARER is RFC 7628 (Dovecot 2.3
requires its ``a=<user>`` authorization identity). Callers pass the token as a
``Secret`` so it is revealed only inside the bytes handed to the socket.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable

from ingest.config.reader import Secret

_SEP = "\x01"


class Mechanism(enum.StrEnum):
    """The SASL mechanism names as servers advertise them."""

    XOAUTH2 = "XOAUTH2"
    OAUTHBEARER = "OAUTHBEARER"


def _xoauth2(user: str, token: str) -> str:
    return f"user={user}{_SEP}auth=Bearer {token}{_SEP}{_SEP}"


def _oauthbearer(user: str, token: str) -> str:
    # GS2 header: no channel binding ("n"), authzid = the mailbox.
    return f"n,a={_escape_saslname(user)},{_SEP}auth=Bearer {token}{_SEP}{_SEP}"


def _escape_saslname(user: str) -> str:
    # RFC 5801: ',' and '=' in a saslname are written =2C and =3D.
    return user.replace("=", "=3D").replace(",", "=2C")


_FORMATS: dict[Mechanism, Callable[[str, str], str]] = {
    Mechanism.XOAUTH2: _xoauth2,
    Mechanism.OAUTHBEARER: _oauthbearer,
}


def initial_response(mechanism: Mechanism | str, user: str, token: Secret) -> bytes:
    """The raw client response for ``mechanism`` (what smtplib/imaplib encode themselves)."""
    return _FORMATS[Mechanism(mechanism.upper())](user, token.reveal()).encode("utf-8")


class SaslResponder:
    """A bearer token's side of a SASL exchange, for IMAP, POP3 and SMTP alike: the initial
    response first, then an empty response to anything more (RFC 7628: the client
    acknowledges an error challenge so that the server can say NO).

    Called as imaplib's authenticator (``(challenge) -> str``) and as smtplib's auth
    object (``()`` first); POP3 sends the same answers in base64 (``encoded``). The token
    is revealed only when the answer is made."""

    def __init__(self, mechanism: Mechanism, user: str, token: Secret) -> None:
        self.mechanism, self.user, self.token = mechanism, user, token
        self.sent = False

    def __call__(self, challenge: bytes | None = None) -> str:
        if self.sent:
            return ""
        self.sent = True
        return initial_response(self.mechanism, self.user, self.token).decode("utf-8")

    def encoded(self, challenge: bytes | None = None) -> str:
        """The next answer in base64, as POP3's ``AUTH`` line and continuations take it."""
        return base64.b64encode(self(challenge).encode("utf-8")).decode("ascii")
