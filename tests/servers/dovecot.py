"""A real, throw-away Dovecot 2.3 for tests: IMAP and POP3, each plain (STARTTLS) and TLS,
with password logins and OAuth2 bearer tokens validated locally (XOAUTH2, OAUTHBEARER).

Every instance lives in its own directory under /dev/shm (or the temp dir; unix socket
paths must stay short) on free loopback ports, runs as a child of the test process in its own
process group, and maps all virtual users to the system user ``mail``. Configuration
templates are in ``tests/servers/dovecot/``; the traps they avoid are described there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from ingest.config.reader import Secret
from ingest.errors import PermanentError
from tests.servers.dovecot_shapes import DEBIAN_DEFAULT, DovecotShape
from tests.servers.mail_server import HarnessUsers, MailUser, Ports
from tests.servers.server_process import (
    MasterProcess,
    fast_temp_dir,
    live_group_members,
    render,
    signal_group,
)
from tests.servers.tls import TestPki, make_test_pki

TEMPLATES = Path(__file__).with_name("dovecot")
AUDIENCE = "https://outlook.office365.com"
DEFAULT_KID = "mock-key-1"
DEFAULT_APP_ID = "3f0c7a52-6b1e-4d8a-9c2f-ackmail00001"
INSTALL_HINT = "run tests/servers/install.sh as root (it installs dovecot-imapd dovecot-pop3d)"
STOP_TIMEOUT = 5.0
MAIL_USER = "mail"
_MAILDIR_SUBS = ("cur", "new", "tmp")


class DovecotHarnessError(PermanentError):
    """The test Dovecot could not be installed, started, stopped or driven."""


@dataclass(frozen=True)
class TokenTrust:
    """What Dovecot needs to validate bearer tokens locally (no call to the provider)."""

    issuer: str
    public_key_pem: bytes = field(repr=False)
    kid: str = DEFAULT_KID
    audience: str = AUDIENCE


def dovecot_binaries(search_path: str | None = None) -> tuple[str, str]:
    """Paths of ``dovecot`` and ``doveadm``; fails with the install hint when missing."""
    search = search_path or os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    dovecot, doveadm = shutil.which("dovecot", path=search), shutil.which("doveadm", path=search)
    if dovecot is None or doveadm is None:
        raise DovecotHarnessError(
            f"Dovecot is not installed (no dovecot/doveadm in {search}): {INSTALL_HINT}.")
    if os.geteuid() != 0:
        raise DovecotHarnessError(
            "The test Dovecot must be started as root (it maps users to the system user 'mail'): "
            "run the tests as root, e.g. in the CI container.")
    return dovecot, doveadm


def ssha512(password: str) -> str:
    """Dovecot's ``{SSHA512}`` scheme: base64(sha512(password + salt) + salt)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def _key_file_name(kid: str) -> str:
    """Dovecot escapes '%' and '/' in a kid when it turns it into a dict (file) key."""
    return kid.replace("%", "%25").replace("/", "%2f")


class DovecotServer(MasterProcess):
    """One running Dovecot instance; use as a context manager or call ``stop()``."""

    _what = "Dovecot"
    _error = DovecotHarnessError

    def __init__(self, trust: TokenTrust, *, app_id: str = DEFAULT_APP_ID,
                 pki: TestPki | None = None, shape: DovecotShape = DEBIAN_DEFAULT) -> None:
        self.shape = shape
        self._dovecot_bin, self._doveadm_bin = dovecot_binaries()
        self.trust = trust
        self.app_id = app_id
        self.root = Path(tempfile.mkdtemp(prefix="ackmail-dovecot-", dir=fast_temp_dir()))
        self.root.chmod(0o711)  # the login, auth and mail processes run as other users
        self.conf = self.root / "dovecot.conf"
        self.ports = Ports.free()
        self.imap_port, self.imaps_port = self.ports.imap, self.ports.imaps
        self.pop3_port, self.pop3s_port = self.ports.pop3, self.ports.pop3s
        self.pki: TestPki = pki or make_test_pki(self.root / "tls")
        self.ca_pem = self.pki.ca_pem
        self.users = HarnessUsers(
            bob=MailUser("bob@example.test", Secret(secrets.token_urlsafe(12), "dovecot harness")),
            alice=MailUser("alice@example.test"),
            shared=MailUser("shared@example.test"))
        self._mail_ids = _mail_ids()
        self._process: subprocess.Popen[bytes] | None = None
        self._sequence = count()
        self._prepare()

    # --- lifecycle
    def _command(self) -> list[str]:
        return [self._dovecot_bin, "-F", "-c", str(self.conf)]

    def stop(self) -> None:
        """Stop the instance: SIGTERM (what ``doveadm stop`` sends) to its whole process group.

        The group is signalled until only the master is left, because the master may sleep
        for seconds before exiting (waiting for a login process it forked just before the
        signal, or before reaping children already dead); the master then gets SIGKILL.
        """
        process, self._process = self._process, None
        if process is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            signal_group(process.pid, signal.SIGTERM)
            time.sleep(0.01)
            if live_group_members(process.pid) == [process.pid]:
                break
        signal_group(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
        # A pid file naming a reused pid would make the next start refuse to run.
        (self.root / "base" / "master.pid").unlink(missing_ok=True)

    # --- mail
    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store one message through Dovecot (``doveadm save``), as an MTA would."""
        self._doveadm("save", "-u", user, "-m", self.shape.wire(folder), stdin=raw)

    def deliver_many(self, user: str, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """Write messages straight into the folder's maildir ``new/`` (fast); returns the count.

        Each file is written under ``tmp/`` and renamed, as the maildir protocol asks, so
        a running Dovecot never sees half a message.
        """
        maildir = self._maildir(user, folder)
        uid, gid = self._mail_ids
        written = 0
        for raw in messages:
            name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._sequence)}.ackmail-harness"
            temporary = maildir / "tmp" / name
            temporary.write_bytes(raw)
            os.chown(temporary, uid, gid)
            temporary.rename(maildir / "new" / f"{name},S={len(raw)}")
            written += 1
        return written

    def create_folder(self, user: str, folder: str) -> None:
        """Create (and subscribe) a folder; '/' separates levels whatever the shape."""
        self._doveadm("mailbox", "create", "-s", "-u", user, self.shape.wire(folder))

    def delete_folder(self, user: str, folder: str) -> None:
        """Delete a folder and the mail in it."""
        self._doveadm("mailbox", "delete", "-u", user, self.shape.wire(folder))

    def list_folder(self, user: str, folder: str = "INBOX") -> int:
        """How many messages Dovecot sees in the folder."""
        return self._status(user, folder, "messages")

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY."""
        return self._status(user, folder, "uidvalidity")

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY (as a server-side rebuild would); returns it."""
        new = self.uidvalidity(user, folder) + 1
        self._doveadm("mailbox", "update", "--uid-validity", str(new), "-u", user,
                      self.shape.wire(folder))
        return new

    # --- internals
    def _write_instance(self) -> None:
        for sub in ("log", "state", "auth", "mail", "oauth2-keys/default/RS256"):
            (self.root / sub).mkdir(parents=True)
        uid, gid = self._mail_ids
        os.chown(self.root / "mail", uid, gid)
        values = {"RUN": str(self.root), "BASE": str(self.root / "base"),
                  "INSTANCE": self.root.name, "ISSUER": self.trust.issuer,
                  "AUDIENCE": self.trust.audience, "CERT": str(self.pki.cert_pem),
                  "KEY": str(self.pki.key_pem), "UID": str(uid), "GID": str(gid),
                  "IMAP_PORT": str(self.ports.imap), "IMAPS_PORT": str(self.ports.imaps),
                  "POP3_PORT": str(self.ports.pop3), "POP3S_PORT": str(self.ports.pop3s),
                  "NAMESPACE": self.shape.namespace_block}
        for template in TEMPLATES.iterdir():
            (self.root / template.name).write_text(render(template.read_text(), values))
        key_file = self.root / "oauth2-keys/default/RS256" / _key_file_name(self.trust.kid)
        key_file.write_bytes(self.trust.public_key_pem)
        self._write_auth_files()

    def _write_auth_files(self) -> None:
        auth = self.root / "auth"
        bob = self.users.bob
        assert bob.password is not None
        (auth / "passwd").write_text(f"{bob.address}:{ssha512(bob.password.reveal())}\n")
        (auth / "users").write_text("".join(f"{u.address}:::::::\n" for u in self.users.all()))
        (auth / "app-grants").write_text(
            f"{self.app_id}+{self.users.shared.address}:::::::nopassword=y\n")
        (auth / "delegate-grants").write_text(
            f"{self.users.alice.address}+{self.users.shared.address}:::::::nopassword=y\n")

    def _doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        result = subprocess.run([self._doveadm_bin, "-c", str(self.conf), *args], input=stdin,
                                capture_output=True, timeout=30, check=False)
        if result.returncode != 0:
            raise DovecotHarnessError(
                f"doveadm {' '.join(args)} failed (exit {result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode()

    def _status(self, user: str, folder: str, item: str) -> int:
        out = self._doveadm("mailbox", "status", "-u", user, item, self.shape.wire(folder))
        return int(out.strip().split("=", 1)[1])

    def _maildir(self, user: str, folder: str) -> Path:
        """The folder's maildir (Maildir++: 'a/b' is '.a.b'), created if missing."""
        home = self.root / "mail" / user.lower()
        if folder.upper() != "INBOX":
            maildir = home / "Maildir" / ("." + folder.replace("/", "."))
            if not maildir.is_dir():
                self.create_folder(user, folder)
            return maildir
        uid, gid = self._mail_ids
        for directory in (home, home / "Maildir", *(home / "Maildir" / s for s in _MAILDIR_SUBS)):
            directory.mkdir(exist_ok=True)
            os.chown(directory, uid, gid)
        return home / "Maildir"


def _mail_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid
