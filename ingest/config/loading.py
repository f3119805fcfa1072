"""``ackmail.toml``: read once with tomllib, validated, frozen.

Every error names the file and the key, and says what to write instead.
Secrets (``{ env = "NAME" }`` or ``{ file = "PATH" }``) are resolved at load so a
missing one is found at start-up, and are held in ``Secret`` objects whose
``repr`` never shows the value.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingest.config.oauth import oauth_settings
from ingest.config.reader import Section
from ingest.config.settings import (
    MailboxConfig,
    RequestsConfig,
    SecurityConfig,
    ServeConfig,
    Settings,
    SmtpConfig,
)
from ingest.errors import ConfigError
from ingest.parse.base import ParseLimits

DEFAULT_CONFIG_NAME = "ackmail.toml"
DATABASE_URL_ENV = "ACKMAIL_DATABASE_URL"
CONFIG_ENV = "ACKMAIL_CONFIG"

PROTOCOLS = ("imap", "pop3", "maildir", "graph")
GRAPH_ENDPOINT = "https://graph.microsoft.com"
SECURITY_MODES = ("ssl", "starttls", "none")
AUTH_KINDS = ("basic", "oauth2-delegated", "oauth2-app")
DEFAULT_PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
    ("smtp", "ssl"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "none"): 25,
}
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def config_path_from(arg: str | None) -> Path:
    """The config path a command uses: ``--config``, else $ACKMAIL_CONFIG, else ./ackmail.toml."""
    return Path(arg or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_settings(path: Path, *, require_file: bool = True) -> Settings:
    """Read and validate ``path``.

    Without a file (and ``require_file=False``) the embedded default applies:
    SQLite next to where the file would be. ``ACKMAIL_DATABASE_URL`` overrides
    ``[database] url`` either way.
    """
    data = _read_toml(path, require_file)
    root = Section(data, "", path)
    settings = Settings(
        path=path,
        database_url=_database_url(root.section("database"), path),
        security=_security(root.section("security")),
        requests=_requests(root.section("requests")),
        mailboxes=_mailboxes(root),
        smtp=_smtp(root.section("smtp"), required=False),
        rules_file=_single_path(root.section("rules"), "file"),
        **_intents(root.section("intents")),
        limits=_limits(root.section("limits")),
        serve=_serve(root.section("serve")),
        **_service(root.section("service"), path),
    )
    root.finish()
    return settings


def _single_path(section: Section, key: str) -> Path | None:
    value: Path | None = section.file_path(key, default=None)
    section.finish()
    return value


def _intents(section: Section) -> dict[str, Any]:
    values = {
        "intents_file": section.file_path("file", default=None),
        "intents_affirmatives": section.flag("affirmatives", default=True),
    }
    section.finish()
    return values


def _limits(section: Section) -> ParseLimits:
    """Bounds on one message; the defaults suit mail that carries decisions."""
    default = ParseLimits()
    result = ParseLimits(
        max_bytes=section.integer("max_bytes", default=default.max_bytes, low=10_000, high=2**31),
        max_parts=section.integer("max_parts", default=default.max_parts, low=1, high=100_000),
        max_depth=section.integer("max_depth", default=default.max_depth, low=1, high=1000),
        max_headers=section.integer(
            "max_headers", default=default.max_headers, low=10, high=100_000
        ),
    )
    section.finish()
    return result


def _serve(section: Section) -> ServeConfig:
    """The ops web server; off loopback every page but /healthz needs the token."""
    result = ServeConfig(
        host=section.text("host", default="127.0.0.1"),
        port=section.integer("port", default=8025, low=1, high=65535),
        token=section.secret("token"),
    )
    section.finish()
    if result.host not in LOOPBACK_HOSTS and result.token is None:
        section.fail(
            "token",
            f"is required when host is '{result.host}' (not loopback): the ops pages would be "
            'open to the network; set token = { env = "NAME" } or bind to 127.0.0.1',
        )
    return result


def _service(section: Section, path: Path) -> dict[str, Any]:
    """Where state lives, how long raw messages are kept for reprocessing, how soon a
    dead poller's mailboxes are taken over by another (PostgreSQL), how many
    processes parse a backlog, and after how many idle days a delegated grant is refreshed."""
    values = {
        "state_dir": section.file_path("state_dir", default=None)
        or (path.parent / ".ackmail").absolute(),
        "keep_raw": section.duration("keep_raw", default="30d"),
        "lease_seconds": section.integer("lease_seconds", default=30, low=1, high=3600),
        "parse_workers": section.integer("parse_workers", default=os.cpu_count() or 1,
                                         low=0, high=64),
        "refresh_idle_days": section.integer("refresh_idle_days", default=14, low=1, high=75),
    }
    section.finish()
    return values


def _read_toml(path: Path, require_file: bool) -> dict[str, Any]:
    try:
        # utf-8-sig: Windows editors save UTF-8 with a byte-order mark, which TOML rejects.
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        if require_file:
            raise ConfigError(
                f"{path}: no such configuration file; run 'ackmail init' to write one, "
                "or pass --config PATH"
            ) from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at that place") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: is not UTF-8 text; save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror}); check the path and permissions"
        ) from None


def _database_url(section: Section, path: Path) -> str:
    url = section.text("url", default="sqlite:///ackmail.db")
    section.finish()
    url = _database_url_from_env() or url
    return _anchor_sqlite_path(url, path.parent)


def _database_url_from_env() -> str | None:
    """``ACKMAIL_DATABASE_URL``, if set; set but empty is a mistake, not a wish for the default."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url is not None and not url.strip():
        raise ConfigError(
            f"environment variable {DATABASE_URL_ENV} is empty; set it to a database URL "
            "(e.g. sqlite:///ackmail.db) or unset it to use [database] url"
        )
    return url


def _anchor_sqlite_path(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the config file, not to the cwd."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or url.startswith("sqlite:////"):
        return url
    relative = url[len(prefix) :]
    if not relative or relative.startswith(":memory:"):
        return url
    return prefix + str((base / relative).absolute())


def _security(section: Section) -> SecurityConfig:
    result = SecurityConfig(
        token_secret=section.secret("token_secret"),
        cache_key=section.secret("cache_key"),
        trusted_authserv_id=section.text("trusted_authserv_id", default=None),
        require_dmarc_pass=section.flag("require_dmarc_pass", default=False),
        trust_exchange_online=section.flag("trust_exchange_online", default=False),
        exchange_tenant_id=section.text("exchange_tenant_id", default=None),
    )
    if result.exchange_tenant_id is not None and not result.trust_exchange_online:
        section.fail("exchange_tenant_id", "is set but trust_exchange_online is not true; "
                     "set trust_exchange_online = true or remove exchange_tenant_id")
    section.finish()
    return result


def _requests(section: Section) -> RequestsConfig:
    result = RequestsConfig(
        reply_address=section.email("reply_address", default=None),
        plus_addressing=section.flag("plus_addressing", default=False),
        message_id_domain=section.text("message_id_domain", default="ackmail.invalid"),
        default_expires=section.duration("default_expires", default="3d"),
    )
    section.finish()
    if result.plus_addressing and not result.reply_address:
        section.fail("plus_addressing", "needs reply_address (the mailbox replies go to)")
    local_part = (result.reply_address or "").partition("@")[0]
    if result.plus_addressing and len(local_part) + len("+XXXX-XXXX") > 64:
        section.fail(
            "reply_address",
            f"local part '{local_part}' is too long for plus-addressing: "
            "with '+' and the 9-character token it must fit in 64 characters",
        )
    return result


def _mailboxes(root: Section) -> tuple[MailboxConfig, ...]:
    boxes = tuple(_mailbox(s) for s in root.array("mailbox"))
    seen: set[str] = set()
    for box in boxes:
        if box.name in seen:
            raise ConfigError(
                f"{root.path}: two [[mailbox]] entries are named '{box.name}'; names must be unique"
            )
        seen.add(box.name)
    return boxes


def _mailbox(section: Section) -> MailboxConfig:
    name = section.text("name")
    section.rename(f"[[mailbox]] '{name}'")
    protocol = section.choice("protocol", PROTOCOLS)
    if protocol == "maildir":
        box = MailboxConfig(
            name=name,
            protocol=protocol,
            path=section.file_path("path"),
            processed_folder=section.text("processed_folder", default=None),
        )
        section.finish()
        return box
    if protocol == "graph":
        return _graph_mailbox(section, name)
    security = section.choice("security", SECURITY_MODES, default="ssl")
    host = section.text("host")
    if security == "none" and host not in LOOPBACK_HOSTS:
        section.fail(
            "security",
            "'none' sends credentials in clear text; it is allowed only for a loopback host",
        )
    auth = section.choice("auth", AUTH_KINDS, default="basic")
    box = MailboxConfig(
        name=name,
        protocol=protocol,
        host=host,
        port=section.integer(
            "port", default=DEFAULT_PORTS[(protocol, security)], low=1, high=65535
        ),
        security=security,
        ca_file=section.file_path("ca_file", default=None),
        username=section.text("username"),
        auth=auth,
        password=section.secret("password", required=auth == "basic"),
        oauth=oauth_settings(section, auth, protocol),
        folder=section.text("folder", default="INBOX"),
        processed_folder=section.text("processed_folder", default=None),
        quarantine_folder=section.text("quarantine_folder", default=None),
        delete_after=section.flag("delete_after", default=False),
        poll_interval_seconds=section.integer("poll_interval", default=60, low=1, high=86400),
        idle=section.flag("idle", default=True),
    )
    section.finish()
    return box


def _graph_mailbox(section: Section, name: str) -> MailboxConfig:
    """A mailbox read through Microsoft Graph: no host or port, an OAuth2 sign-in always."""
    endpoint = section.https_url("graph_endpoint", default=GRAPH_ENDPOINT)
    if urlsplit(endpoint).path not in ("", "/"):
        section.fail("graph_endpoint", f"must be the service's root URL such as {GRAPH_ENDPOINT} "
                     f"(ackmail adds /v1.0 itself), not '{endpoint}'")
    auth = section.choice("auth", AUTH_KINDS[1:])
    box = MailboxConfig(
        name=name,
        protocol="graph",
        graph_endpoint=endpoint,
        ca_file=section.file_path("ca_file", default=None),
        username=section.email("username"),
        auth=auth,
        oauth=oauth_settings(section, auth, "graph"),
        folder=section.text("folder", default="Inbox"),
        processed_folder=section.text("processed_folder", default=None),
        quarantine_folder=section.text("quarantine_folder", default=None),
        # Graph has no push to wait on here: a delta query every poll_interval is cheap.
        poll_interval_seconds=section.integer("poll_interval", default=15, low=1, high=86400),
    )
    section.finish()
    return box


def _smtp(section: Section, *, required: bool) -> SmtpConfig | None:
    if section.empty and not required:
        return None
    security = section.choice("security", SECURITY_MODES, default="starttls")
    auth = section.choice("auth", ("none", *AUTH_KINDS), default="none")
    backup_section = section.section("backup")
    result = SmtpConfig(
        host=section.text("host"),
        port=section.integer("port", default=DEFAULT_PORTS[("smtp", security)], low=1, high=65535),
        security=security,
        auth=auth,
        username=section.text("username", default=""),
        password=section.secret("password", required=auth == "basic"),
        oauth=oauth_settings(section, auth, "smtp"),
        from_address=section.email("from_address", default=""),
        ca_file=section.file_path("ca_file", default=None),
        backup=_smtp(backup_section, required=False),
    )
    section.finish()
    return result
