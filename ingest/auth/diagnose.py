"""Turn MSAL's error dicts and HTTP failures into typed errors with a cause and a fix.

MSAL reports failures as ``{"error", "error_description", "error_codes",
"correlation_id"}``. The AADSTS table below is data: one row per failure a
mailbox owner meets, with what it means and what to do. ``{command}``,
``{client_id}``, ``{tenant}``, ``{username}`` and ``{authority}`` in a fix are
filled in for the subject.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msal
import requests

from ingest.auth.base import AuthKind, AuthSubject
from ingest.auth.errors import AuthError, IdentityProviderUnavailable, ReauthRequired


class Remedy(enum.Enum):
    """Who acts on a failure, which decides the exception raised."""

    SIGN_IN_AGAIN = "sign in again"      # the delegated grant is gone: ReauthRequired
    FIX_SETTINGS = "fix the settings"    # ackmail.toml or the app registration
    ADMIN = "ask an administrator"       # tenant policy, consent, Exchange permissions
    RETRY = "retry later"                # the identity provider's own fault


@dataclass(frozen=True)
class Diagnosis:
    """What a failure means and how to get past it."""

    codes: tuple[int, ...]
    cause: str
    fix: str
    remedy: Remedy


_SIGN_IN = "sign in again with: {command}"
AADSTS_TABLE: tuple[Diagnosis, ...] = (
    # A secret's "Secret ID" pasted instead of its "Value" is the usual slip.
    Diagnosis((7000215,), "the client secret is wrong",
              "copy the secret's Value (not its Secret ID) from Entra ID > App registrations > "
              "{client_id} > Certificates & secrets into client_secret", Remedy.FIX_SETTINGS),
    Diagnosis((7000222,), "the client secret has expired",
              "create a new secret for app {client_id} in Entra ID, then update client_secret "
              "and client_secret_expires", Remedy.FIX_SETTINGS),
    # Entra names the cause in "[Reason - ...]": key not found, signature mismatch, expired.
    Diagnosis((700027,), "the client certificate was refused",
              "upload the public part of the configured certificate (or a renewed one, when it "
              "expired) to app {client_id} > Certificates & secrets in Entra ID",
              Remedy.FIX_SETTINGS),
    Diagnosis((700024,), "the client assertion was outside its valid time range (this "
              "machine's clock is off)", "set the clock right (NTP) and retry",
              Remedy.FIX_SETTINGS),
    # Refresh tokens lapse after 90 days without use (or by sign-in frequency policy).
    Diagnosis((700082, 70008), "the stored sign-in expired after a long idle time",
              _SIGN_IN, Remedy.SIGN_IN_AGAIN),
    Diagnosis((70043,), "a Conditional Access sign-in frequency policy ended the stored "
              "sign-in", "sign in again with: {command} (an administrator may exclude the "
              "mailbox account from the sign-in frequency policy)", Remedy.SIGN_IN_AGAIN),
    Diagnosis((50173, 50133), "the stored sign-in was revoked (password changed or sessions "
              "revoked by an administrator)", _SIGN_IN, Remedy.SIGN_IN_AGAIN),
    Diagnosis((70000, 9002313), "the refresh token is invalid (already used or revoked)",
              _SIGN_IN, Remedy.SIGN_IN_AGAIN),
    Diagnosis((65001, 65004), "the permissions were not consented to (or consent was revoked)",
              "an administrator grants consent for app {client_id} in Entra ID > Enterprise "
              "applications > Permissions, then " + _SIGN_IN, Remedy.SIGN_IN_AGAIN),
    Diagnosis((50076, 50079, 50078), "multi-factor authentication is required",
              "complete MFA interactively: " + _SIGN_IN, Remedy.SIGN_IN_AGAIN),
    Diagnosis((53003,), "Conditional Access blocked the sign-in",
              "an administrator checks Entra ID > Sign-in logs for the policy and allows this "
              "app/location (or excludes the mailbox account)", Remedy.ADMIN),
    Diagnosis((50126, 50055, 50034), "the account's user name or password was not accepted",
              "check the account's password in a browser, then " + _SIGN_IN,
              Remedy.SIGN_IN_AGAIN),
    Diagnosis((50057, 50053), "the account is disabled or locked",
              "an administrator unlocks/enables {username} in Entra ID", Remedy.ADMIN),
    Diagnosis((90002, 90072, 50020), "the tenant was not found, or the account is not in it",
              "set tenant_id to the Directory (tenant) ID from Entra ID > Overview, or "
              "'organizations'", Remedy.FIX_SETTINGS),
    Diagnosis((700016,), "the application was not found in the directory",
              "check client_id ({client_id}) and tenant_id ({tenant}) against Entra ID > "
              "App registrations > Overview", Remedy.FIX_SETTINGS),
    Diagnosis((7000218,), "the app is a confidential client but no secret was sent",
              "enable 'Allow public client flows' on app {client_id} (Authentication blade), "
              "or configure client_secret", Remedy.FIX_SETTINGS),
    Diagnosis((50011, 500113), "the redirect URI is not registered on the app",
              "add http://localhost under 'Mobile and desktop applications' in the app's "
              "Authentication blade", Remedy.FIX_SETTINGS),
    Diagnosis((70011, 500011), "the scope is not valid for this tenant or resource",
              "use the default scopes (remove 'scopes') or fix them; Exchange Online must be "
              "licensed in the tenant", Remedy.FIX_SETTINGS),
    Diagnosis((7000229,), "the app has no service principal in the tenant (it was never "
              "consented to there)", "an administrator consents to app {client_id} in tenant "
              "{tenant} (Entra ID > Enterprise applications), or creates its service principal",
              Remedy.ADMIN),
    Diagnosis((7000112, 50105), "the application is disabled or the user is not assigned to it",
              "an administrator enables app {client_id} and assigns {username} in Entra ID > "
              "Enterprise applications", Remedy.ADMIN),
    Diagnosis((90033, 50196, 90006), "the identity provider is busy or had an internal error",
              "", Remedy.RETRY),
)

# When no AADSTS code is known: decide by the OAuth2 error string alone.
ERROR_FALLBACKS: Mapping[str, Diagnosis] = {
    "invalid_grant": Diagnosis((), "the stored grant was refused", _SIGN_IN,
                               Remedy.SIGN_IN_AGAIN),
    "interaction_required": Diagnosis((), "an interactive sign-in is required", _SIGN_IN,
                                      Remedy.SIGN_IN_AGAIN),
    "temporarily_unavailable": Diagnosis((), "the identity provider is temporarily unavailable",
                                         "", Remedy.RETRY),
    "server_error": Diagnosis((), "the identity provider had an internal error", "",
                              Remedy.RETRY),
}
# App-only access has no user sign-in to repeat: the registration itself must be fixed.
_APP_GRANT_FIX = ("check app {client_id}'s API permissions and admin consent in Entra ID; "
                  "app-only access needs no user sign-in")
_UNKNOWN = Diagnosis((), "the identity provider refused the request",
                     "look up the error code at https://login.microsoftonline.com/error and "
                     "fix the app registration or settings", Remedy.FIX_SETTINGS)
_BY_CODE: Mapping[int, Diagnosis] = {code: row for row in AADSTS_TABLE for code in row.codes}
_CODE_IN_TEXT = re.compile(r"AADSTS(\d+)")
_HTTP_STATUS = re.compile(r"HTTP Error: (\d{3})")
_REASON = re.compile(r"\[Reason - ([^,\]]+)")


def aadsts_codes(result: Mapping[str, Any]) -> list[int]:
    """The AADSTS codes of an MSAL error dict (``error_codes``, else from the description)."""
    codes = [int(code) for code in result.get("error_codes") or () if str(code).isdigit()]
    return codes or [int(code) for code in _CODE_IN_TEXT.findall(
        str(result.get("error_description", "")))]


def diagnose(result: Mapping[str, Any]) -> Diagnosis:
    """The table row for an MSAL error dict; unknown codes get a generic row."""
    for code in aadsts_codes(result):
        if code in _BY_CODE:
            return _BY_CODE[code]
    return ERROR_FALLBACKS.get(str(result.get("error")), _UNKNOWN)


def error_for(result: Mapping[str, Any],
              subject: AuthSubject) -> AuthError | IdentityProviderUnavailable:
    """The typed exception for an MSAL error dict, with cause, fix and correlation id."""
    found = diagnose(result)
    codes = aadsts_codes(result)
    code = f"AADSTS{codes[0]}" if codes else str(result.get("error") or "unknown_error")
    cause = found.cause if found is not _UNKNOWN else _first_sentence(result) or found.cause
    if reason := _REASON.search(str(result.get("error_description", ""))):
        cause = f"{cause}: {reason.group(1).rstrip('.')}"
    correlation_id = result.get("correlation_id")
    if found.remedy is Remedy.RETRY:
        return IdentityProviderUnavailable(subject.name, cause, code=code,
                                           correlation_id=correlation_id)
    fix = found.fix.format_map(_placeholders(subject))
    if found.remedy is Remedy.SIGN_IN_AGAIN:
        if subject.kind is AuthKind.DELEGATED:
            return ReauthRequired(subject.name, cause, subject.login_command, fix=fix, code=code,
                                  correlation_id=correlation_id)
        fix = _APP_GRANT_FIX.format_map(_placeholders(subject))
    return AuthError(subject.name, cause, fix, code=code, correlation_id=correlation_id)


TransportError = requests.exceptions.RequestException


def transport_error(subject: AuthSubject, authority: str,
                    exc: TransportError) -> AuthError | IdentityProviderUnavailable:
    """A TLS failure is a settings problem; any other transport failure is transient."""
    if isinstance(exc, requests.exceptions.SSLError):
        return AuthError(subject.name, f"the TLS certificate of {authority} is not trusted",
                         "set ca_file in the [oauth] table to the CA that signed it (a "
                         "TLS-inspecting proxy's CA, for instance)", code="tls")
    return IdentityProviderUnavailable(
        subject.name, f"the identity provider {authority} could not be reached "
        f"({type(exc).__name__})", code="network")


def server_fault(subject: AuthSubject, authority: str,
                 exc: msal.exceptions.MsalServiceError) -> IdentityProviderUnavailable:
    """MSAL raises "HTTP Error: 503" for a 5xx before reading the body: never the grant's fault."""
    status = _HTTP_STATUS.search(str(exc))
    code = f"http-{status.group(1)}" if status else "server_error"
    return IdentityProviderUnavailable(
        subject.name, f"the identity provider {authority} answered with a server fault "
        f"({exc}); the stored sign-in is kept and the call is retried", code=code)


def authority_error(subject: AuthSubject, authority: str, exc: ValueError) -> AuthError:
    """MSAL raises ValueError when the authority does not serve a discovery document."""
    return AuthError(subject.name, f"{authority} did not answer as an OpenID provider ({exc})",
                     "check authority and tenant_id in the [oauth] table", code="authority")


def _placeholders(subject: AuthSubject) -> dict[str, str]:
    oauth = subject.oauth
    return {"command": subject.login_command, "username": subject.username,
            "client_id": oauth.client_id if oauth else "?",
            "tenant": oauth.tenant_id if oauth else "?",
            "authority": oauth.authority if oauth else "?"}


def _first_sentence(result: Mapping[str, Any]) -> str:
    text = str(result.get("error_description") or "")
    text = _CODE_IN_TEXT.sub("", text, count=1).lstrip(": ")
    return text.split(". ")[0].split("\r\n")[0].strip().rstrip(".")
