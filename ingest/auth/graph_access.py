"""Why Microsoft Graph refused a mailbox (401, 403), and the step that grants access.

Graph says only "Access is denied. Check credentials and try again." for every 403.
The token's claims tell the two usual causes apart: the permission is missing from
the token (not granted, or no admin consent), or it is there and Exchange Online
restricts the app to other mailboxes (RBAC for Applications, or the older
application access policy), or a delegated user has no access to another's mailbox.
"""

from __future__ import annotations

from ingest.auth.base import AuthKind, AuthSubject
from ingest.auth.claims import (
    APP_PERMISSION,
    claims_of,
    shown_claims,
    token_findings,
    token_kind,
)
from ingest.auth.errors import AuthError
from ingest.config import MailboxConfig
from ingest.config.reader import Secret

PERMISSION = APP_PERMISSION["graph"]
# Exchange Online PowerShell; <...> are the values only the admin has at hand.
RBAC_STEP = (
    'in Exchange Online PowerShell run New-ServicePrincipal -AppId {client_id} -ObjectId '
    '<enterprise app object id> -DisplayName ackmail, then New-ManagementRoleAssignment '
    '-App {client_id} -Role "Application Mail.ReadWrite" -CustomResourceScope <a management '
    'scope holding {username}> (RBAC for Applications; Test-ServicePrincipalAuthorization '
    '-Identity {client_id} -Resource {username} shows the result); with an application '
    'access policy instead, add {username} to the group of New-ApplicationAccessPolicy '
    '-AppId {client_id} -PolicyScopeGroupId <group> -AccessRight RestrictAccess')
DELEGATE_STEP = ("give the signed-in user access: Add-MailboxPermission -Identity {username} "
                 "-User {account} -AccessRights FullAccess, or set username to the user's own "
                 "address")


def _fill(subject: AuthSubject) -> dict[str, str]:
    return {"username": subject.username, "account": subject.account,
            "client_id": subject.oauth.client_id if subject.oauth else "<app id>"}


def graph_denied(box: MailboxConfig, token: Secret | None, code: str,
                 message: str) -> AuthError:
    """The AuthError for a 403: a missing permission, or the app or user not let in."""
    subject = AuthSubject.of_mailbox(box)
    claims = claims_of(token)
    said = f"403 {code}: {message}".strip()
    findings = token_findings(claims, subject) if claims else []
    if findings:
        return AuthError(subject.name, f"Microsoft Graph refused mailbox {box.username} "
                         f"({said}): " + "; ".join(found.text for found in findings),
                         findings[0].fix, code="graph-403", claims=shown_claims(claims))
    kind = token_kind(claims) if claims else subject.kind
    if kind is AuthKind.APP:
        cause = (f"Microsoft Graph refused mailbox {box.username} ({said}): the app holds the "
                 f"application permission {PERMISSION}, but Exchange Online does not let it "
                 "open this mailbox")
        fix = RBAC_STEP
    else:
        cause = (f"Microsoft Graph refused mailbox {box.username} ({said}): the signed-in user "
                 f"{subject.account} has the delegated permission {PERMISSION} but no access "
                 "to this mailbox")
        fix = DELEGATE_STEP
    return AuthError(subject.name, cause, fix.format_map(_fill(subject)), code="graph-403",
                     claims=shown_claims(claims))


def graph_token_refused(box: MailboxConfig, token: Secret | None, code: str,
                        message: str) -> AuthError:
    """The AuthError for a fresh token Graph still refused (401)."""
    subject = AuthSubject.of_mailbox(box)
    claims = claims_of(token)
    findings = token_findings(claims, subject) if claims else []
    reasons = "".join(f": {found.text}" for found in findings[:1])
    fix = findings[0].fix if findings else (
        "check the app registration (tenant_id, client_id) and the [mailbox.oauth] scopes")
    return AuthError(subject.name, f"Microsoft Graph refused a freshly issued access token "
                     f"(401 {code}: {message}){reasons}", fix, code="graph-401",
                     claims=shown_claims(claims))
