"""Explain a mail server's refusal of a login (IMAP, POP3, SMTP) with a cause and a fix.

Exchange Online's texts are few and vague; the rows below map them to the usual
causes. When the token is at hand its claims are checked too, and a finding
there (wrong account, missing permission, expiry) is the more precise answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ingest.auth.base import AuthKind, AuthSubject, subject_of
from ingest.auth.claims import claims_of, shown_claims, token_findings
from ingest.auth.errors import AuthError
from ingest.config import MailboxConfig, SmtpConfig
from ingest.config.reader import Secret

_OAUTH = frozenset({AuthKind.APP, AuthKind.DELEGATED})
# The per-mailbox switch that turns a protocol on in Exchange Online.
CAS_SWITCH = {"imap": "-ImapEnabled $true", "pop3": "-PopEnabled $true",
              "smtp": "-SmtpClientAuthenticationDisabled $false"}


@dataclass(frozen=True)
class LoginFailureRule:
    """A server text pattern, the auth kinds it applies to, its cause and fix."""

    pattern: re.Pattern[str]
    kinds: frozenset[AuthKind]
    cause: str
    fix: str


_NOT_CONNECTED = re.compile(r"authenticated but not connected", re.I)
LOGIN_FAILURES: tuple[LoginFailureRule, ...] = (
    # Exchange accepted the token but would not open the mailbox named in user=.
    LoginFailureRule(
        _NOT_CONNECTED, frozenset({AuthKind.APP}),
        "the token was accepted but Exchange Online did not open mailbox {username}: the "
        "app's service principal is not registered in Exchange Online or has no permission "
        "on this mailbox, or username is not the mailbox's primary address",
        "in Exchange Online PowerShell run New-ServicePrincipal -AppId {client_id} -ObjectId "
        "<enterprise app object id>, then Add-MailboxPermission -Identity {username} -User "
        "<service principal id> -AccessRights FullAccess"),
    LoginFailureRule(
        _NOT_CONNECTED, frozenset({AuthKind.DELEGATED}),
        "the token was accepted but Exchange Online did not open mailbox {username}: the "
        "token is for another user than username, that user has no FullAccess to this "
        "(shared) mailbox, or a shared mailbox was opened with the signed-in user's address "
        "instead of the shared one",
        "set username to the address of the mailbox to open (the shared address for a shared "
        "mailbox), sign in as a user with FullAccess to it (Add-MailboxPermission -Identity "
        "{username} -User <user> -AccessRights FullAccess), and check IMAP is enabled "
        "(Set-CASMailbox -Identity {username} {cas_switch})"),
    LoginFailureRule(
        re.compile(r"5\.7\.139|SmtpClientAuthentication", re.I), frozenset(AuthKind),
        "SMTP AUTH is disabled for this mailbox or the whole tenant",
        "run Set-CASMailbox -Identity {username} -SmtpClientAuthenticationDisabled $false "
        "(and check Set-TransportConfig and security defaults)"),
    LoginFailureRule(
        re.compile(r"AUTHENTICATE failed|AUTHENTICATIONFAILED|Authentication (failed|"
                   r"unsuccessful)|5\.7\.3", re.I), _OAUTH,
        "the server refused the token: {protocol} access may be disabled for the mailbox, or "
        "the app lacks the Exchange permission",
        "run Set-CASMailbox -Identity {username} {cas_switch}, and check the app's API "
        "permissions and admin consent"),
    LoginFailureRule(
        re.compile(r"LOGIN failed|Logon failure|AUTHENTICATIONFAILED|Authentication failed|"
                   r"authentication (failed|unsuccessful)|invalid credentials", re.I),
        frozenset({AuthKind.BASIC}),
        "the server refused the user name or password",
        "check username and password; Exchange Online no longer takes passwords for IMAP/POP, "
        "use auth = 'oauth2-delegated' or 'oauth2-app' there"),
)


def diagnose_login_failure(server_message: str, config: MailboxConfig | SmtpConfig | AuthSubject,
                           *, token: Secret | None = None,
                           now: datetime | None = None) -> AuthError:
    """The AuthError for a refused login, using the token's claims when given."""
    subject = subject_of(config)
    summary = " ".join(server_message.split())[:200]
    fill = _placeholders(subject)
    claims = claims_of(token)
    findings = token_findings(claims, subject, now) if claims else []
    shown = shown_claims(claims)
    if findings:
        reasons = "; ".join(found.text for found in findings)
        return AuthError(subject.name, f"the server refused the login ({summary}): {reasons}",
                         findings[0].fix, code="login", claims=shown)
    rule = _matching_rule(server_message, subject.kind)
    if rule is None:
        return AuthError(subject.name, f"the server refused the login ({summary})",
                         "check the user name and the mailbox's access settings",
                         code="login", claims=shown)
    return AuthError(subject.name, rule.cause.format_map(fill) + f" ({summary})",
                     rule.fix.format_map(fill), code="login", claims=shown)


def _matching_rule(message: str, kind: AuthKind) -> LoginFailureRule | None:
    return next((rule for rule in LOGIN_FAILURES
                 if kind in rule.kinds and rule.pattern.search(message)), None)


def _placeholders(subject: AuthSubject) -> dict[str, str]:
    return {"username": subject.username, "protocol": subject.protocol.upper(),
            "cas_switch": CAS_SWITCH.get(subject.protocol, ""),
            "client_id": subject.oauth.client_id if subject.oauth else "?"}
