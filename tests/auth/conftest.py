"""Fixtures for the auth tests: mailboxes registered with the test identity provider."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ingest.auth import TokenProvider, TokenProviders, finish_device_sign_in, start_device_sign_in
from ingest.auth.cache import CacheContents, TokenCacheFile
from ingest.auth.tokens import cache_path
from ingest.config import MailboxConfig, OAuthConfig
from ingest.config.reader import Secret
from tests.servers.idp import IdentityProvider

ALICE = "alice@example.test"
SHARED = "shared@example.test"
APP_ID = "3f0c7a52-6b1e-4d8a-9c2f-0ac0a11a0001"
PUBLIC_ID = "9d2e4b61-1f3a-4c7d-8e5b-0ac0a11a0002"
APP_SECRET = "app-secret-value-Q~7yZ"

MailboxFactory = Callable[..., MailboxConfig]


@pytest.fixture
def cache_key() -> Secret:
    """The user's ``[security] cache_key``."""
    return Secret(secrets.token_urlsafe(32), "test")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def providers(state_dir: Path, cache_key: Secret) -> TokenProviders:
    """What one ackmail process holds: one long-lived provider per mailbox."""
    return TokenProviders(state_dir, cache_key, timeout=10.0, lock_timeout=20.0)


@pytest.fixture
def make_mailbox(idp: IdentityProvider) -> MailboxFactory:
    """Build a mailbox whose [oauth] points at the test provider (override any setting)."""

    def make(auth: str, *, name: str | None = None, username: str | None = None,
             protocol: str = "imap", **oauth: Any) -> MailboxConfig:
        app = auth == "oauth2-app"
        settings: dict[str, Any] = {
            "tenant_id": idp.tenant, "client_id": APP_ID if app else PUBLIC_ID,
            "client_secret": Secret(APP_SECRET, "test") if app else None,
            "authority": idp.base_url, "ca_file": Path(idp.ca_pem)} | oauth
        return MailboxConfig(name=name or ("shared" if app else "alice"), protocol=protocol,
                             host="127.0.0.1", username=username or (SHARED if app else ALICE),
                             auth=auth, oauth=OAuthConfig(**settings))

    return make


@pytest.fixture
def app_mailbox(idp: IdentityProvider, make_mailbox: MailboxFactory) -> MailboxConfig:
    """An oauth2-app mailbox whose app registration has a valid secret."""
    idp.register_client(APP_ID, secret=APP_SECRET)
    return make_mailbox("oauth2-app")


@pytest.fixture
def delegated_mailbox(idp: IdentityProvider, make_mailbox: MailboxFactory) -> MailboxConfig:
    """An oauth2-delegated mailbox for alice with a public client registration."""
    idp.register_client(PUBLIC_ID)
    return make_mailbox("oauth2-delegated")


def sign_in_by_device_code(idp: IdentityProvider, provider: TokenProvider,
                           upn: str = ALICE) -> None:
    """Play the user: enter the device code at the provider as ``upn``."""
    prompt = start_device_sign_in(provider)
    idp.approve_device_code(prompt.user_code, upn)
    finish_device_sign_in(provider, prompt)


@pytest.fixture
def signed_in(idp: IdentityProvider, providers: TokenProviders,
              delegated_mailbox: MailboxConfig) -> TokenProvider:
    """alice's provider after a device-code sign-in."""
    provider = providers.for_subject(delegated_mailbox)
    sign_in_by_device_code(idp, provider)
    return provider


def read_cache(state_dir: Path, mailbox: MailboxConfig, key: Secret) -> CacheContents:
    """Decrypt a mailbox's cache file the way ackmail does."""
    file = TokenCacheFile(cache_path(state_dir, mailbox), key, subject="test", fix="-")
    contents = file.read()
    assert contents is not None, "no cache file was written"
    return contents


def cached_refresh_tokens(state_dir: Path, mailbox: MailboxConfig, key: Secret) -> list[str]:
    """The refresh-token secrets stored in a mailbox's cache."""
    state = json.loads(read_cache(state_dir, mailbox, key).msal_state.reveal())
    return [entry["secret"] for entry in state.get("RefreshToken", {}).values()]


class _FormReader(HTMLParser):
    """Reads the form of a form_post answer page: its action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""


def play_browser(idp: IdentityProvider, url: str) -> int:
    """Be the user's browser: open the sign-in page, submit its answer to the redirect URI."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=idp.pki.client_context()),
        urllib.request.ProxyHandler({}))
    reader = _FormReader()
    with opener.open(url, timeout=10) as page:
        reader.feed(page.read().decode("utf-8"))
    assert reader.action.startswith("http://127.0.0.1:"), reader.action
    with opener.open(reader.action, data=urlencode(reader.fields).encode(), timeout=10) as done:
        return int(done.status)
