"""``ackmail.toml``: its shape (``settings``), how it is read (``loading``), and the
typed reader with ``Secret`` that never shows its value (``reader``)."""

from ingest.config.loading import (
    CONFIG_ENV,
    DATABASE_URL_ENV,
    DEFAULT_CONFIG_NAME,
    LOOPBACK_HOSTS,
    config_path_from,
    load_settings,
)
from ingest.config.oauth import default_scopes
from ingest.config.reader import Secret, Section
from ingest.config.settings import (
    CertificateConfig,
    MailboxConfig,
    OAuthConfig,
    RequestsConfig,
    SecurityConfig,
    ServeConfig,
    Settings,
    SmtpConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_CONFIG_NAME",
    "LOOPBACK_HOSTS",
    "CertificateConfig",
    "MailboxConfig",
    "OAuthConfig",
    "RequestsConfig",
    "Secret",
    "Section",
    "SecurityConfig",
    "ServeConfig",
    "Settings",
    "SmtpConfig",
    "config_path_from",
    "default_scopes",
    "load_settings",
]
