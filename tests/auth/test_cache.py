"""The encrypted token cache file: no clear tokens, atomic writes, written only on change."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken

from ingest.auth import ReauthRequired, TokenProvider, TokenProviders, cache_path
from ingest.auth.cache import CacheContents, CacheMetadata, TokenCacheFile, derive_fernet
from ingest.auth.errors import TokenCacheError
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from tests.auth.conftest import ALICE, cached_refresh_tokens
from tests.servers.idp import IdentityProvider


def test_file_holds_no_token_in_clear(idp: IdentityProvider, signed_in: TokenProvider,
                                      delegated_mailbox: MailboxConfig, state_dir: Path,
                                      cache_key: Secret) -> None:
    access = signed_in.token().secret.reveal()
    refresh = idp.live_refresh_tokens(ALICE)
    assert refresh == cached_refresh_tokens(state_dir, delegated_mailbox, cache_key)

    blob = cache_path(state_dir, delegated_mailbox).read_bytes()

    for secret in [access, *refresh, access.split(".")[1], ALICE, cache_key.reveal()]:
        assert secret.encode() not in blob


def test_file_and_folder_are_private(signed_in: TokenProvider,
                                     delegated_mailbox: MailboxConfig, state_dir: Path) -> None:
    file = cache_path(state_dir, delegated_mailbox)

    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700


def test_cache_hit_does_not_rewrite_the_file(signed_in: TokenProvider,
                                             delegated_mailbox: MailboxConfig,
                                             state_dir: Path) -> None:
    signed_in.token()
    file = cache_path(state_dir, delegated_mailbox)
    before = file.stat()

    assert signed_in.token().from_cache

    after = file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_change_replaces_the_file_atomically(signed_in: TokenProvider,
                                            delegated_mailbox: MailboxConfig,
                                            state_dir: Path) -> None:
    file = cache_path(state_dir, delegated_mailbox)
    before = file.stat().st_ino

    signed_in.invalidate()  # one change, one write

    assert file.stat().st_ino != before  # a new file renamed over the old one
    assert sorted(p.name for p in file.parent.iterdir()) == [file.name, file.name + ".lock"]


def _file(tmp_path: Path, key: str) -> TokenCacheFile:
    return TokenCacheFile(tmp_path / "tokens" / "box.cache", Secret(key, "test"),
                          subject="mailbox 'box'", fix="run ackmail auth login box")


def test_failed_write_keeps_the_old_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    file = _file(tmp_path, "key-1")
    file.write(CacheContents(Secret('{"old": 1}', "t"), CacheMetadata()))

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        file.write(CacheContents(Secret('{"new": 2}', "t"), CacheMetadata()))

    monkeypatch.undo()
    contents = file.read()
    assert contents is not None and contents.msal_state.reveal() == '{"old": 1}'
    assert [p.name for p in file.path.parent.iterdir()] == ["box.cache"]


def test_round_trip_keeps_state_and_metadata(tmp_path: Path) -> None:
    file = _file(tmp_path, "key-1")
    meta = CacheMetadata(last_refresh=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                         signed_in_at=datetime(2026, 1, 1, tzinfo=UTC))

    file.write(CacheContents(Secret('{"state": true}', "t"), meta))
    contents = file.read()

    assert contents is not None
    assert (contents.msal_state.reveal(), contents.meta) == ('{"state": true}', meta)


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    _file(tmp_path, "key-1").write(CacheContents(Secret("{}", "t"), CacheMetadata()))

    with pytest.raises(TokenCacheError) as caught:
        _file(tmp_path, "key-2").read()

    assert "cache_key" in str(caught.value) and "ackmail auth login box" in caught.value.fix


def test_keys_derive_distinct_ciphers() -> None:
    token = derive_fernet(Secret("key-1", "t")).encrypt(b"payload")

    assert derive_fernet(Secret("key-1", "t")).decrypt(token) == b"payload"
    with pytest.raises(InvalidToken):
        derive_fernet(Secret("key-2", "t")).decrypt(token)


def test_changed_key_needs_a_new_sign_in_for_delegated(
        signed_in: TokenProvider, delegated_mailbox: MailboxConfig, state_dir: Path) -> None:
    other = TokenProviders(state_dir, Secret("another key", "test"))

    with pytest.raises(ReauthRequired, match="cache_key"):
        other.for_subject(delegated_mailbox).token()


def test_changed_key_is_recovered_for_app_only(idp: IdentityProvider,
                                               providers: TokenProviders,
                                               app_mailbox: MailboxConfig,
                                               state_dir: Path) -> None:
    providers.for_subject(app_mailbox).token()
    other = TokenProviders(state_dir, Secret("another key", "test"))

    token = other.for_subject(app_mailbox).token()  # the app simply asks for a new token

    assert not token.from_cache
    assert len(idp.requests("client_credentials")) == 2
