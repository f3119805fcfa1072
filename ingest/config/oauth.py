"""The ``[mailbox.oauth]`` and ``[smtp.oauth]`` tables: the app registration, its secret or
certificate, the scopes a sign-in asks for."""

from __future__ import annotations

from ingest.config.reader import Section
from ingest.config.settings import CertificateConfig, OAuthConfig


def oauth_settings(parent: Section, auth: str, protocol: str) -> OAuthConfig | None:
    """The ``[...oauth]`` table under ``parent``: the app registration a sign-in uses."""
    if not auth.startswith("oauth2"):
        if parent.has("oauth"):
            parent.fail(
                "oauth",
                f"is only used with auth = 'oauth2-app' or 'oauth2-delegated', not '{auth}'",
            )
        return None
    section = parent.section("oauth", required=True)
    app_only = auth == "oauth2-app"
    result = OAuthConfig(
        tenant_id=section.text("tenant_id"),
        client_id=section.text("client_id"),
        client_secret=section.secret("client_secret"),
        certificate=_certificate(section),
        client_secret_expires=section.calendar_date("client_secret_expires", default=None),
        authority=section.https_url("authority", default="https://login.microsoftonline.com"),
        ca_file=section.file_path("ca_file", default=None),
        scopes=tuple(section.str_list("scopes", default=default_scopes(protocol, app_only))),
        refresh_margin_seconds=section.integer(
            "refresh_margin_seconds", default=60, low=0, high=3600
        ),
        account=section.text("account", default=None),
    )
    section.finish()
    if app_only and result.client_secret is None and result.certificate is None:
        section.fail("client_secret", "oauth2-app needs a client_secret or a certificate")
    return result


def _certificate(parent: Section) -> CertificateConfig | None:
    for old in ("client_certificate", "certificate_thumbprint"):
        if parent.has(old):
            parent.fail(old, 'is replaced by certificate = { file = "app.pfx" } (or file = the '
                             'PEM certificate and key_file = its PEM key); the thumbprint is '
                             'read from the certificate')
    if not parent.has("certificate"):
        return None
    section = parent.section("certificate")
    result = CertificateConfig(
        file=section.file_path("file"),
        key_file=section.file_path("key_file", default=None),
        passphrase=section.secret("passphrase"),
        send_x5c=section.flag("send_x5c", default=False),
    )
    section.finish()
    return result


GRAPH_RESOURCE = "https://graph.microsoft.com"


def default_scopes(protocol: str, app_only: bool) -> list[str]:
    """The Exchange Online (or Microsoft Graph) scopes for a protocol and auth kind."""
    if protocol == "graph":
        return [f"{GRAPH_RESOURCE}/.default"] if app_only else [
            f"{GRAPH_RESOURCE}/Mail.ReadWrite", "offline_access"]
    if app_only:
        return ["https://outlook.office365.com/.default"]
    service = {
        "imap": "IMAP.AccessAsUser.All",
        "pop3": "POP.AccessAsUser.All",
        "smtp": "SMTP.Send",
    }[protocol]
    return [f"https://outlook.office.com/{service}", "offline_access"]
