"""Read an access token's claims (no signature check) and explain why a server may refuse it.

Exchange Online answers every bad token with the same "AUTHENTICATE failed"; the
claims usually tell why: another audience, a missing permission, another account
(a browser still signed in to someone else), or a token past its expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.auth.base import AuthKind, AuthSubject, subject_of
from ingest.config import MailboxConfig, SmtpConfig
from ingest.config.reader import Secret
from ingest.errors import PermanentError
from ingest.timeutil import utcnow

EXCHANGE_AUDIENCE = "https://outlook.office365.com"
# Exchange takes tokens for either host name, and its first-party app id.
EXCHANGE_AUDIENCES = frozenset({EXCHANGE_AUDIENCE, "https://outlook.office.com",
                                "00000002-0000-0ff1-ce00-000000000000"})
GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_AUDIENCES = frozenset({GRAPH_AUDIENCE, "00000003-0000-0000-c000-000000000000"})
DELEGATED_PERMISSION = {"imap": "IMAP.AccessAsUser.All", "pop3": "POP.AccessAsUser.All",
                        "smtp": "SMTP.Send", "graph": "Mail.ReadWrite"}
APP_PERMISSION = {"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp",
                  "smtp": "SMTP.SendAsApp", "graph": "Mail.ReadWrite"}
_ACCOUNT_CLAIMS = ("upn", "preferred_username", "unique_name", "email")
# What a token says about who it is for and what it may do; nothing here grants access.
_SHOWN_CLAIMS = ("aud", "iss", "tid", "appid", "azp", "oid", "idtyp", "roles", "scp",
                 *_ACCOUNT_CLAIMS)
_TIME_CLAIMS = ("nbf", "exp")


class MalformedToken(PermanentError):
    """The token is not a JWT whose payload can be read."""


def decode_claims(access_token: str | Secret) -> dict[str, Any]:
    """The payload of a JWT as a dict; the signature is neither checked nor returned."""
    raw = access_token.reveal() if isinstance(access_token, Secret) else access_token
    parts = raw.split(".")
    if len(parts) != 3:
        raise MalformedToken("the access token is not a JWT (opaque token); its claims cannot "
                             "be shown, so check the app registration's permissions instead")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise MalformedToken("the access token's payload is not base64url JSON; it was "
                             "damaged on the way or is not an access token") from None
    if not isinstance(claims, dict):
        raise MalformedToken("the access token's payload is not a JSON object")
    return claims


def claims_of(token: Secret | None) -> dict[str, Any]:
    """A refused token's claims for a diagnosis; empty without a token or for an opaque one."""
    if token is None:
        return {}
    try:
        return decode_claims(token)
    except MalformedToken:
        return {}


@dataclass(frozen=True)
class Finding:
    """One reason a server may refuse the token, and what to do about it."""

    text: str
    fix: str


def shown_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims that explain a refusal (audience, tenant, app, account, permissions,
    validity as ISO times), fit to store in an event or print."""
    shown = {name: claims[name] for name in _SHOWN_CLAIMS if name in claims}
    times = {name: _at(claims[name]).isoformat() for name in _TIME_CLAIMS
             if isinstance(claims.get(name), int | float)}
    return shown | times


def token_kind(claims: dict[str, Any]) -> AuthKind:
    """App-only or delegated, from ``idtyp`` or else from which permission claim it has."""
    idtyp = claims.get("idtyp")
    if idtyp in ("app", "user"):
        return AuthKind.APP if idtyp == "app" else AuthKind.DELEGATED
    return AuthKind.APP if "roles" in claims and "scp" not in claims else AuthKind.DELEGATED


def token_account(claims: dict[str, Any]) -> str | None:
    """The signed-in user's name (upn and its fallbacks); None for app-only tokens."""
    return next((str(claims[name]) for name in _ACCOUNT_CLAIMS if claims.get(name)), None)


def _audience(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    aud = claims.get("aud")
    audiences = set(aud) if isinstance(aud, list) else {aud}
    graph = subject.protocol == "graph"
    if audiences & (GRAPH_AUDIENCES if graph else EXCHANGE_AUDIENCES):
        return None
    wanted, api = ((GRAPH_AUDIENCE, "Microsoft Graph") if graph
                   else (EXCHANGE_AUDIENCE, "Exchange"))
    return Finding(f"aud is {aud}, not {wanted}: the token is for another API",
                   f"request the {api} scopes (remove a custom 'scopes' setting)")


def _kind(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    kind = token_kind(claims)
    if kind is subject.kind:
        return None
    return Finding(f"the token is {kind.value} but the mailbox uses auth = '{subject.kind}'",
                   "make the auth setting match the app registration's permission type")


def _permission(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    if token_kind(claims) is AuthKind.APP:
        claim, wanted = "roles", APP_PERMISSION.get(subject.protocol)
        granted = set(claims.get("roles") or ())
    else:
        claim, wanted = "scp", DELEGATED_PERMISSION.get(subject.protocol)
        granted = set(str(claims.get("scp") or "").split())
    if wanted is None or wanted in granted:
        return None
    kind = "application" if claim == "roles" else "delegated"
    api = "Microsoft Graph" if subject.protocol == "graph" else "Office 365 Exchange Online"
    # Exchange's RBAC for Applications grants Graph mail access without a role in the token.
    rbac = (f', or assign it in Exchange Online (New-ManagementRoleAssignment -Role '
            f'"Application {wanted}")' if subject.protocol == "graph" and claim == "roles" else "")
    return Finding(f"the token lacks {wanted} in {claim}",
                   f"add the {api} {kind} permission {wanted} to the app and grant admin "
                   f"consent{rbac}")


def _account(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    if token_kind(claims) is AuthKind.APP:
        return None
    account = token_account(claims)
    if account is None or account.lower() == subject.account.lower():
        return None
    expected = (f"mailbox {subject.username}" if subject.account == subject.username
                else f"{subject.account}, who signs in to mailbox {subject.username}")
    return Finding(f"upn {account} differs from {expected} (the sign-in picked another "
                   "account, e.g. one a browser was still signed in to)",
                   f"run {subject.login_command} and choose {subject.account}, in a private "
                   "browser window if needed")


def _tenant(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    tenant = subject.oauth.tenant_id if subject.oauth else None
    tid = claims.get("tid")
    # 'organizations' and 'common' accept any tenant; only a fixed tenant id can differ.
    if not tid or not tenant or tenant in ("organizations", "common") or tid == tenant:
        return None
    return Finding(f"tid {tid} is not the configured tenant {tenant}",
                   "sign in with an account of the configured tenant, or fix tenant_id")


def _times(claims: dict[str, Any], subject: AuthSubject, now: datetime) -> Finding | None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and _at(exp) <= now:
        return Finding(f"expired {_ago(now - _at(exp))} ago",
                       "get a fresh token (ackmail refreshes it; check the host's clock)")
    if isinstance(nbf, int | float) and _at(nbf) > now:
        return Finding(f"not valid for another {_ago(_at(nbf) - now)}",
                       "check the host's clock (NTP)")
    return None


Check = Callable[[dict[str, Any], AuthSubject, datetime], Finding | None]
# Most telling first: a wrong account explains everything after it.
CHECKS: tuple[Check, ...] = (_account, _kind, _audience, _permission, _tenant, _times)


def token_findings(claims: dict[str, Any], config: MailboxConfig | SmtpConfig | AuthSubject,
                   now: datetime | None = None) -> list[Finding]:
    """Every check's finding for ``claims`` used with ``config``."""
    subject = subject_of(config)
    moment = now or utcnow()
    return [found for check in CHECKS if (found := check(claims, subject, moment))]


def explain_token(claims: dict[str, Any], mailbox: MailboxConfig | SmtpConfig | AuthSubject,
                  now: datetime | None = None) -> list[str]:
    """Why a server may refuse this token for ``mailbox``; empty when nothing looks wrong."""
    return [found.text for found in token_findings(claims, mailbox, now)]


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _ago(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
