"""ackmail.toml: validation names the key and the file; secrets stay hidden."""

from __future__ import annotations

import os
import textwrap
from datetime import date
from pathlib import Path

import pytest

from ingest.config import load_settings
from ingest.errors import ConfigError
from ingest.parse.base import Intent
from ingest.parse.exchange import ExchangeTrust
from ingest.parse.intent import classify_intent
from ingest.pipeline import parse_options

FULL = """
[database]
url = "sqlite:///data/ackmail.db"

[security]
token_secret = { env = "TEST_TOKEN_SECRET" }
cache_key = { file = "keys/cache" }
trusted_authserv_id = "mx.contoso.test"
require_dmarc_pass = true

[requests]
reply_address = "approvals@contoso.test"
plus_addressing = true
default_expires = "2d"

[[mailbox]]
name = "approvals"
protocol = "imap"
host = "outlook.office365.com"
username = "approvals@contoso.test"
processed_folder = "ackmail/processed"
auth = "oauth2-app"

[mailbox.oauth]
tenant_id = "contoso"
client_id = "app-1"
client_secret = { env = "TEST_CLIENT_SECRET" }
client_secret_expires = 2028-06-30

[[mailbox]]
name = "alerts"
protocol = "pop3"
host = "127.0.0.1"
security = "none"
username = "bob"
password = { env = "TEST_POP_PASSWORD" }
delete_after = true

[[mailbox]]
name = "local"
protocol = "maildir"
path = "mail/local"

[smtp]
host = "smtp.office365.com"
auth = "oauth2-delegated"
username = "approvals@contoso.test"
from_address = "approvals@contoso.test"

[smtp.oauth]
tenant_id = "contoso"
client_id = "app-2"
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ackmail.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEST_TOKEN_SECRET", "token-secret-value")
    monkeypatch.setenv("TEST_CLIENT_SECRET", "client-secret-value")
    monkeypatch.setenv("TEST_POP_PASSWORD", "pop-password-value")
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cache").write_text("cache-key-value\n")


def test_a_full_configuration_loads(tmp_path: Path, secrets_env: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'ackmail.db'}"
    assert settings.security.token_secret is not None
    assert settings.security.token_secret.reveal() == "token-secret-value"
    assert settings.security.cache_key is not None
    assert settings.security.cache_key.reveal() == "cache-key-value"
    approvals = settings.mailbox("approvals")
    assert (approvals.port, approvals.security, approvals.auth) == (993, "ssl", "oauth2-app")
    assert approvals.oauth is not None
    assert approvals.oauth.scopes == ("https://outlook.office365.com/.default",)
    assert approvals.oauth.client_secret_expires == date(2028, 6, 30)
    assert settings.mailbox("alerts").port == 110
    assert settings.mailbox("local").path == tmp_path / "mail" / "local"
    assert settings.smtp is not None and settings.smtp.port == 587
    assert settings.smtp.oauth is not None
    assert settings.smtp.oauth.scopes == ("https://outlook.office.com/SMTP.Send", "offline_access")


def test_secrets_never_show_in_repr(tmp_path: Path, secrets_env: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    text = repr(settings) + str(settings.security.token_secret)
    for value in (
        "token-secret-value",
        "client-secret-value",
        "pop-password-value",
        "cache-key-value",
    ):
        assert value not in text
    assert "env TEST_CLIENT_SECRET" in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "[database]\nurl = 'sqlite:///x.db'\nhots = 1\n",
            r"\[database\] key 'hots' is not a known setting; remove it",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhots = 'x'\nhost = 'h'\nusername = 'u'\n"
            "password = 'p'\n",
            r"\[\[mailbox\]\] 'a' key 'hots' is not a known setting \(did you mean 'host'\?\)",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'smtp'\n",
            r"key 'protocol' must be one of imap, pop3, maildir, graph, not 'smtp'",
        ),
        (
            "[[mailbox]]\nname = 'g'\nprotocol = 'graph'\nusername = 'a@b.test'\n"
            "auth = 'basic'\n",
            r"key 'auth' must be one of oauth2-delegated, oauth2-app, not 'basic'",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'mail.example.com'\n"
            "security = 'none'\n",
            r"'none' sends credentials in clear text",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'h'\nusername = 'u'\nport = 99999\n"
            "password = 'p'\n",
            r"key 'port' must be between 1 and 65535",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'h'\nusername = 'u'\n"
            "auth = 'oauth2-app'\n"
            "[mailbox.oauth]\ntenant_id = 't'\nclient_id = 'c'\n",
            r"oauth2-app needs a client_secret or a certificate",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'h'\nusername = 'u'\n"
            "auth = 'oauth2-app'\n[mailbox.oauth]\ntenant_id = 't'\nclient_id = 'c'\n"
            "client_certificate = 'key.pem'\ncertificate_thumbprint = 'AB'\n",
            r"'client_certificate' is replaced by certificate = \{ file = \"app.pfx\" \}",
        ),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'h'\nusername = 'u'\n"
            "auth = 'oauth2-app'\n[mailbox.oauth]\ntenant_id = 't'\nclient_id = 'c'\n"
            "certificate = { file = 'app.pfx', thumbprint = 'AB' }\n",
            r"certificate\] key 'thumbprint' is not a known setting",
        ),
        ("[requests]\nplus_addressing = true\n", r"plus_addressing' needs reply_address"),
        ("[requests]\ndefault_expires = 'soon'\n", r"'soon' is not a duration"),
        (
            "[[mailbox]]\nname = 'a'\nprotocol = 'maildir'\npath = 'm'\n"
            "[[mailbox]]\nname = 'a'\nprotocol = 'maildir'\npath = 'n'\n",
            r"two \[\[mailbox\]\] entries are named 'a'",
        ),
        (
            "[security]\ntoken_secret = { env = 'ACKMAIL_SURELY_UNSET_VAR' }\n",
            r"\[security\] key 'token_secret' reads environment variable ACKMAIL_SURELY_UNSET_VAR, "
            r"which is not set",
        ),
        ("[security]\ntoken_secret = { file = 'missing/secret' }\n",
         r"which does not exist; create it"),
        ("[security]\ntoken_secret = { vault = 'x' }\n", r"must be \{ env = \"NAME\" \} or"),
        ("database = 5\n", r"\[database\] must be a table"),
        ("[service]\nrefresh_idle_days = 90\n",
         r"\[service\] key 'refresh_idle_days' must be between 1 and 75"),
        (
            "[security]\nexchange_tenant_id = 't'\n",
            r"'exchange_tenant_id' is set but trust_exchange_online is not true",
        ),
    ],
)
def test_invalid_configuration_names_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_settings(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_refresh_idle_days_defaults_to_14(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).refresh_idle_days == 14
    weekly = load_settings(write(tmp_path, "[service]\nrefresh_idle_days = 7\n"))
    assert weekly.refresh_idle_days == 7


def test_certificate_table_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PFX_PASSPHRASE", "not-shown")
    path = write(tmp_path, "[[mailbox]]\nname = 'a'\nprotocol = 'imap'\nhost = 'h'\n"
                           "username = 'u'\nauth = 'oauth2-app'\n[mailbox.oauth]\n"
                           "tenant_id = 't'\nclient_id = 'c'\ncertificate = { file = 'app.pfx', "
                           "passphrase = { env = 'TEST_PFX_PASSPHRASE' }, send_x5c = true }\n")
    oauth = load_settings(path).mailboxes[0].oauth
    assert oauth is not None and oauth.certificate is not None
    assert oauth.certificate.file == tmp_path / "app.pfx"
    assert oauth.certificate.passphrase is not None and oauth.certificate.send_x5c
    assert "not-shown" not in repr(oauth)


def test_malformed_toml_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "[database\nurl = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML \(.*line 1"):
        load_settings(path)


def test_missing_file_is_an_error_only_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="run 'ackmail init'"):
        load_settings(missing)
    assert (
        load_settings(missing, require_file=False).database_url
        == f"sqlite:///{tmp_path}/ackmail.db"
    )


def test_database_url_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACKMAIL_DATABASE_URL", "postgresql+psycopg://ops@db.example.test/acks")
    settings = load_settings(write(tmp_path, "[database]\nurl = 'sqlite:///x.db'\n"))
    assert settings.database_url == "postgresql+psycopg://ops@db.example.test/acks"


def test_unknown_mailbox_lists_the_known_ones(tmp_path: Path, secrets_env: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    with pytest.raises(ConfigError, match="configured: approvals, alerts, local"):
        settings.mailbox("aproovals")


def test_limits_reach_the_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    settings = load_settings(write(tmp_path, "[limits]\nmax_bytes = 20000\nmax_parts = 5\n"))
    assert parse_options(settings).limits.max_bytes == 20000
    assert settings.limits.max_parts == 5
    with pytest.raises(ConfigError, match="key 'max_depth' must be between 1 and 1000"):
        load_settings(write(tmp_path, "[limits]\nmax_depth = 0\n"))


def test_intents_affirmatives_switch_reaches_the_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    default = parse_options(load_settings(write(tmp_path, "")))
    assert classify_intent("Yes", vocabulary=default.vocabulary).intent is Intent.AFFIRM
    settings = load_settings(write(tmp_path, "[intents]\naffirmatives = false\n"))
    off = parse_options(settings).vocabulary
    assert classify_intent("Yes", vocabulary=off).intent is Intent.UNKNOWN
    assert classify_intent("Approved", vocabulary=off).intent is Intent.APPROVE
    with pytest.raises(ConfigError, match=r"\[intents\] key 'affirmatives' must be"):
        load_settings(write(tmp_path, "[intents]\naffirmatives = 'no'\n"))


def test_exchange_online_trust_reaches_the_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    assert parse_options(load_settings(write(tmp_path, ""))).exchange is None
    settings = load_settings(write(tmp_path, (
        "[security]\ntrust_exchange_online = true\nexchange_tenant_id = 'abc'\n"
        "trusted_authserv_id = 'mx.contoso.test'\n")))
    assert parse_options(settings).exchange == ExchangeTrust("abc", "mx.contoso.test")


def test_serve_defaults_to_loopback_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    serve = load_settings(write(tmp_path, "")).serve
    assert (serve.host, serve.port, serve.token) == ("127.0.0.1", 8025, None)


def test_serve_token_is_a_hidden_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    monkeypatch.setenv("TEST_SERVE_TOKEN", "serve-token-value")
    settings = load_settings(write(tmp_path, """
        [serve]
        host = "0.0.0.0"
        port = 9125
        token = { env = "TEST_SERVE_TOKEN" }
    """))
    assert (settings.serve.host, settings.serve.port) == ("0.0.0.0", 9125)
    assert settings.serve.token is not None
    assert settings.serve.token.reveal() == "serve-token-value"
    assert "serve-token-value" not in repr(settings)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "[serve]\nhost = '0.0.0.0'\n",
            r"\[serve\] key 'token' is required when host is '0.0.0.0' \(not loopback\)",
        ),
        ("[serve]\nhost = '127.0.0.2'\n", r"\[serve\] key 'token' is required when host is"),
        ("[serve]\nport = 0\n", r"\[serve\] key 'port' must be between 1 and 65535"),
        ("[serve]\nbind = '::1'\n", r"\[serve\] key 'bind' is not a known setting"),
    ],
)
def test_invalid_serve_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    monkeypatch.delenv("ACKMAIL_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, body))


def test_parse_workers_default_to_the_cpus_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "ackmail.toml"
    assert load_settings(path, require_file=False).parse_workers == (os.cpu_count() or 1)
    path.write_text("[service]\nparse_workers = 0\n")
    assert load_settings(path).parse_workers == 0
    path.write_text("[service]\nparse_workers = -1\n")
    with pytest.raises(ConfigError, match="key 'parse_workers' must be between 0 and 64, not -1"):
        load_settings(path)


@pytest.mark.parametrize(("auth", "scopes"), [
    ("oauth2-app", ("https://graph.microsoft.com/.default",)),
    ("oauth2-delegated", ("https://graph.microsoft.com/Mail.ReadWrite", "offline_access")),
])
def test_a_graph_mailbox_needs_no_host_and_defaults_to_graphs_endpoint_and_scopes(
        tmp_path: Path, auth: str, scopes: tuple[str, ...],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CLIENT_SECRET", "not-shown")
    secret = "client_secret = { env = 'TEST_CLIENT_SECRET' }\n" if auth == "oauth2-app" else ""
    path = write(tmp_path, f"[[mailbox]]\nname = 'g'\nprotocol = 'graph'\n"
                           f"username = 'shared@example.test'\nauth = '{auth}'\n"
                           f"processed_folder = 'Inbox/Done'\n[mailbox.oauth]\n"
                           f"tenant_id = 't'\nclient_id = 'c'\n{secret}")
    (box,) = load_settings(path).mailboxes
    assert (box.protocol, box.host, box.folder, box.graph_endpoint, box.poll_interval_seconds) \
        == ("graph", "", "Inbox", "https://graph.microsoft.com", 15)
    assert box.oauth is not None and box.oauth.scopes == scopes
