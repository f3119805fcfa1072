"""One encrypted token-cache file per mailbox: Fernet at rest, atomic writes, a file lock.

The file holds MSAL's serialized cache plus a small metadata record (last refresh,
last sign-in) in one encrypted JSON blob, so both change together or not at all.
The Fernet key is derived with HKDF from ``[security] cache_key``; a wrong key or
a damaged file is a ``TokenCacheError``, never a traceback.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ingest.auth.errors import TokenCacheError
from ingest.config.reader import Secret
from ingest.errors import TransientError

FORMAT_VERSION = 1
_HKDF_INFO = b"ackmail token cache v1"


def derive_fernet(cache_key: Secret) -> Fernet:
    """The Fernet cipher for token caches, derived from the user's ``cache_key``."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        cache_key.reveal().encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(raw))


@dataclass(frozen=True)
class CacheMetadata:
    """Facts about the grant that MSAL's cache does not keep; no secrets."""

    last_refresh: datetime | None = None
    signed_in_at: datetime | None = None

    def to_json(self) -> dict[str, str | None]:
        """A JSON-ready dict (ISO 8601 times)."""
        return {"last_refresh": _iso(self.last_refresh), "signed_in_at": _iso(self.signed_in_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheMetadata:
        """The inverse of ``to_json``; unknown keys are ignored for forward compatibility."""
        return cls(last_refresh=_parse_time(data.get("last_refresh")),
                   signed_in_at=_parse_time(data.get("signed_in_at")))


@dataclass(frozen=True)
class CacheContents:
    """What the file holds: MSAL's state (tokens, hence a Secret) and the metadata."""

    msal_state: Secret
    meta: CacheMetadata


@dataclass(frozen=True)
class FileStamp:
    """Identity of one version of the file, to notice another process's write."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileStamp:
        """The stamp of a ``stat()`` result."""
        return cls(info.st_ino, info.st_size, info.st_mtime_ns)


class TokenCacheFile:
    """The encrypted cache file of one subject, with its lock file beside it."""

    def __init__(self, path: Path, cache_key: Secret, *, subject: str, fix: str,
                 lock_timeout: float = 30.0) -> None:
        self.path = path
        self._fernet = derive_fernet(cache_key)
        self._subject = subject
        self._fix = fix
        self._lock = filelock.FileLock(str(path.with_name(path.name + ".lock")),
                                       timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"TokenCacheFile({str(self.path)!r})"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cross-process lock for a load -> acquire -> save sequence."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise TransientError(
                f"{self._subject}: the token cache {self.path} stayed locked by another ackmail "
                f"process for {self._lock.timeout:.0f} s; it is retried later") from None
        try:
            yield
        finally:
            self._lock.release()

    def stamp(self) -> FileStamp | None:
        """The current version of the file, or None when there is none."""
        try:
            return FileStamp.of(self.path.stat())
        except FileNotFoundError:
            return None

    def read(self) -> CacheContents | None:
        """Decrypt the file; None when it does not exist yet."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(self._fernet.decrypt(blob))
            return CacheContents(Secret(data["msal"], "token cache"),
                                 CacheMetadata.from_json(data.get("meta", {})))
        except (InvalidToken, ValueError, KeyError, TypeError):
            raise TokenCacheError(
                self._subject, f"the token cache {self.path} cannot be decrypted with "
                "[security] cache_key (the key changed or the file is damaged)",
                f"restore the previous cache_key, or {self._fix}") from None

    def write(self, contents: CacheContents) -> FileStamp:
        """Encrypt and replace the file atomically (temp file, fsync, rename; mode 0600)."""
        payload = {"format": FORMAT_VERSION, "msal": contents.msal_state.reveal(),
                   "meta": contents.meta.to_json()}
        blob = self._fernet.encrypt(json.dumps(payload).encode("utf-8"))
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                        suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(blob)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return FileStamp.of(self.path.stat())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None
