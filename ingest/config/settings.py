"""The settings' shape: one frozen dataclass per section of ``ackmail.toml``.

``ingest.config.loading`` reads and validates the file into these; nothing mutates
them afterwards (tests replace them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ingest.config.reader import Secret
from ingest.errors import ConfigError
from ingest.parse.base import ParseLimits


@dataclass(frozen=True)
class CertificateConfig:
    """An app's certificate: a PKCS#12 ``file``, or a PEM certificate ``file`` + ``key_file``."""

    file: Path
    key_file: Path | None = None
    passphrase: Secret | None = None
    send_x5c: bool = False


@dataclass(frozen=True)
class OAuthConfig:
    """An app registration in Entra ID (or a test identity provider)."""

    tenant_id: str
    client_id: str
    client_secret: Secret | None = None
    certificate: CertificateConfig | None = None
    client_secret_expires: date | None = None
    authority: str = "https://login.microsoftonline.com"
    ca_file: Path | None = None
    scopes: tuple[str, ...] = ()
    refresh_margin_seconds: int = 60
    account: str | None = None  # who signs in, when not ``username`` (a shared mailbox)


@dataclass(frozen=True)
class MailboxConfig:
    """One watched mailbox; ``name`` is how commands and the database refer to it."""

    name: str
    protocol: str
    host: str = ""
    port: int = 0
    security: str = "ssl"
    ca_file: Path | None = None
    username: str = ""
    password: Secret | None = None
    auth: str = "basic"
    oauth: OAuthConfig | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    quarantine_folder: str | None = None
    delete_after: bool = False
    path: Path | None = None
    poll_interval_seconds: int = 60
    idle: bool = True
    graph_endpoint: str = "https://graph.microsoft.com"  # protocol "graph": national clouds


@dataclass(frozen=True)
class SmtpConfig:
    """Where outgoing mail (requests, notifications) is submitted."""

    host: str
    port: int
    security: str = "starttls"
    auth: str = "none"
    username: str = ""
    password: Secret | None = None
    oauth: OAuthConfig | None = None
    from_address: str = ""
    ca_file: Path | None = None
    backup: SmtpConfig | None = None


@dataclass(frozen=True)
class SecurityConfig:
    """Keys and the trust placed in upstream mail authentication."""

    token_secret: Secret | None = None
    cache_key: Secret | None = None
    trusted_authserv_id: str | None = None
    require_dmarc_pass: bool = False
    trust_exchange_online: bool = False
    exchange_tenant_id: str | None = None


@dataclass(frozen=True)
class RequestsConfig:
    """How outgoing requests are addressed so replies can be matched to them."""

    reply_address: str | None = None
    plus_addressing: bool = False
    message_id_domain: str = "ackmail.invalid"
    default_expires: str = "3d"


@dataclass(frozen=True)
class ServeConfig:
    """Where ``ackmail serve`` listens; a non-loopback host needs a bearer token."""

    host: str = "127.0.0.1"
    port: int = 8025
    token: Secret | None = None


@dataclass(frozen=True)
class Settings:
    """The whole configuration, loaded once and never mutated."""

    path: Path
    database_url: str
    security: SecurityConfig = field(default_factory=SecurityConfig)
    requests: RequestsConfig = field(default_factory=RequestsConfig)
    mailboxes: tuple[MailboxConfig, ...] = ()
    smtp: SmtpConfig | None = None
    rules_file: Path | None = None
    intents_file: Path | None = None
    # A short "yes" ("OK", "Ja", 👍) as the whole first clause counts as an answer.
    intents_affirmatives: bool = True
    limits: ParseLimits = field(default_factory=ParseLimits)
    state_dir: Path = Path(".ackmail")
    keep_raw: str = "30d"
    lease_seconds: float = 30.0
    # Processes that parse backlogs (0 or 1: parse in the poller's own process).
    parse_workers: int = 0
    # A delegated grant idle this long is refreshed by the daily upkeep (Entra ends it at 90).
    refresh_idle_days: int = 14
    serve: ServeConfig = field(default_factory=ServeConfig)

    def mailbox(self, name: str) -> MailboxConfig:
        """The mailbox called ``name``, or a ConfigError listing the known ones."""
        for box in self.mailboxes:
            if box.name == name:
                return box
        known = ", ".join(b.name for b in self.mailboxes) or "none"
        raise ConfigError(f"{self.path}: no [[mailbox]] is named '{name}' (configured: {known})")
