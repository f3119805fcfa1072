"""SASL initial responses for bearer tokens, shared by the IMAP, POP3 and SMTP sources.

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


def initial_response_b64(mechanism: Mechanism | str, user: str, token: Secret) -> str:
    """The base64 form sent after ``AUTH <mechanism>`` (POP3, or SASL-IR on IMAP/SMTP)."""
    return base64.b64encode(initial_response(mechanism, user, token)).decode("ascii")


def xoauth2(user: str, token: Secret) -> bytes:
    """``user=U^Aauth=Bearer T^A^A``."""
    return initial_response(Mechanism.XOAUTH2, user, token)


def oauthbearer(user: str, token: Secret) -> bytes:
    """``n,a=U,^Aauth=Bearer T^A^A``."""
    return initial_response(Mechanism.OAUTHBEARER, user, token)
