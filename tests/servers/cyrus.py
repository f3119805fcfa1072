"""A real, throw-away Cyrus IMAP 3.6 for tests: IMAP and POP3, each plain and implicit TLS,
password logins against the instance's own sasldb, in one of the namespace shapes of
``tests/servers/cyrus_config.py`` (Debian's ``INBOX.`` with '.' by default).

Every instance lives in its own short directory under /dev/shm (unix socket paths must stay
short), on free loopback ports; ``master`` is started as root in its own process group and
drops to the ``cyrus`` user itself. Mail is put in and counted over IMAP as the user (APPEND,
STATUS), as a mail client would; a new UIDVALIDITY comes from rebuilding the folder's index
with ``reconstruct``, as an administrator repairing a mailbox does. Cyrus here validates no
OAuth2 tokens (it has no JWT-checking SASL plug-in like Dovecot's passdb): its users log in
with passwords only.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from imapclient import IMAPClient

from ingest.config.reader import Secret
from ingest.errors import PermanentError
from tests.servers.cyrus_config import (
    ADMIN,
    CYRUS_CONF_TEMPLATE,
    CYRUS_DEBIAN,
    SERVERNAME,
    CyrusFiles,
    CyrusShape,
    imapd_conf,
)
from tests.servers.mail_server import HarnessUsers, MailUser, Ports
from tests.servers.server_process import (
    MasterProcess,
    fast_temp_dir,
    live_group_members,
    render,
    signal_group,
)
from tests.servers.tls import TestPki, make_test_pki

PACKAGE_DIR = Path(os.environ.get("ACKMAIL_TEST_CYRUS_DIR", "/opt/ackmail-tests/cyrus"))
DAEMONS = PACKAGE_DIR / "usr/lib/cyrus/bin"  # imapd, pop3d, idled (unpacked by install.sh)
TOOLS = Path("/usr/lib/cyrus/bin")  # master and the admin tools (package cyrus-common)
SASLPASSWD = Path("/usr/sbin/saslpasswd2")
INSTALL_HINT = ("run tests/servers/install.sh as root (it installs cyrus-common and sasl2-bin "
                f"and unpacks cyrus-imapd and cyrus-pop3d into {PACKAGE_DIR})")
CYRUS_USER = "cyrus"
STOP_TIMEOUT = 5.0
STOP_GRACE = 2.0
_FOLDERS = ("conf/socket", "spool", "news", "sieve", "run/proc", "run/lock", "log", "tls")


class CyrusHarnessError(PermanentError):
    """The test Cyrus could not be installed, started, stopped or driven."""


def cyrus_programs(daemons: Path = DAEMONS, tools: Path = TOOLS) -> None:
    """Fail with the install hint when a program the harness runs is missing."""
    wanted = [daemons / name for name in ("imapd", "pop3d", "idled")]
    wanted += [tools / name for name in ("master", "ctl_cyrusdb", "reconstruct", "mbpath")]
    missing = [str(path) for path in [*wanted, SASLPASSWD] if not os.access(path, os.X_OK)]
    if missing:
        raise CyrusHarnessError(f"Cyrus IMAP is not installed ({', '.join(missing)} missing): "
                                f"{INSTALL_HINT}.")
    if os.geteuid() != 0:
        raise CyrusHarnessError("The test Cyrus must be started as root (its master drops to "
                                "the system user 'cyrus'): run the tests as root, e.g. in CI.")


class CyrusServer(MasterProcess):
    """One running Cyrus instance; use as a context manager or call ``stop()``."""

    _what = "Cyrus master"
    _error = CyrusHarnessError

    def __init__(self, shape: CyrusShape = CYRUS_DEBIAN,
                 settings: Mapping[str, str] | None = None) -> None:
        cyrus_programs()
        self.shape = shape
        self._settings = dict(settings or {})
        self.root = Path(tempfile.mkdtemp(prefix="ackmail-cyrus-", dir=fast_temp_dir()))
        self.conf = self.root / "imapd.conf"
        self.ports = Ports.free()
        self.imap_port, self.imaps_port = self.ports.imap, self.ports.imaps
        self.pop3_port, self.pop3s_port = self.ports.pop3, self.ports.pop3s
        self.pki: TestPki = make_test_pki(self.root / "tls")
        self.ca_pem = self.pki.ca_pem
        self.users = HarnessUsers(*(MailUser(name, Secret(secrets.token_urlsafe(12), "cyrus"))
                                    for name in ("bob", "alice", "shared")))
        self._admin = Secret(secrets.token_urlsafe(12), "cyrus admin")
        self._process: subprocess.Popen[bytes] | None = None
        self._mailboxes_made = False
        self._prepare()

    # --- lifecycle
    def _command(self) -> list[str]:
        return [str(TOOLS / "master"), "-C", str(self.conf), "-M", str(self.root / "cyrus.conf"),
                "-p", str(self.root / "run" / "master.pid"),
                "-L", str(self.root / "log" / "master.log")]

    def _ready(self) -> None:
        """Every port greets; on the first start the admin then creates the users' mailboxes."""
        super()._ready()
        if not self._mailboxes_made:
            self._make_mailboxes()

    def stop(self) -> None:
        """SIGTERM to the whole process group: master, idled, every imapd and pop3d.

        Cyrus 3.6.1's master often never exits after the signal: when it comes while a
        service process is ending (right after start, the readiness probes' processes), it
        spins at full CPU with no children left, whether sent SIGTERM, SIGINT or SIGQUIT.
        So once only the master is left (or after ``STOP_GRACE`` seconds) the group gets
        SIGKILL: the master holds no mail or database state of its own, and
        ``ctl_cyrusdb -r`` recovers the databases at the next start anyway.
        """
        process, self._process = self._process, None
        if process is None:
            return
        signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while process.poll() is None and time.monotonic() < deadline:
            if live_group_members(process.pid) == [process.pid]:
                break
            time.sleep(0.01)
        signal_group(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
        (self.root / "run" / "master.pid").unlink(missing_ok=True)

    # --- mail, over IMAP as the user
    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """APPEND one message, as an MTA's delivery agent would store it."""
        self.deliver_many(user, [raw], folder)

    def deliver_many(self, user: str, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """APPEND messages over one connection (the folder is created if missing)."""
        appended = 0
        with self.session(user) as client:
            self._create(client, folder)
            for raw in messages:
                client.append(self.shape.wire(folder), raw)
                appended += 1
        return appended

    def create_folder(self, user: str, folder: str) -> None:
        """Create (and subscribe) a folder and its parents; '/' separates levels."""
        with self.session(user) as client:
            self._create(client, folder)

    def delete_folder(self, user: str, folder: str) -> None:
        """Delete a folder and the mail in it."""
        with self.session(user) as client:
            client.delete_folder(self.shape.wire(folder))

    def list_folder(self, user: str, folder: str = "INBOX") -> int:
        """How many messages Cyrus sees in the folder."""
        return self._status(user, folder, b"MESSAGES")

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY."""
        return self._status(user, folder, b"UIDVALIDITY")

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Rebuild the folder's index from its message files (``reconstruct`` after the
        index is removed): Cyrus then gives the folder a new UIDVALIDITY and numbers the
        messages again from 1. Expunged messages are purged first, or they would return.
        The new value is the clock's second: a folder made this second first waits for the
        next one."""
        old = self.uidvalidity(user, folder)
        while time.time() < old + 1:
            time.sleep(0.05)
        name = self._admin_name(user, folder)
        self._tool("cyr_expire", "-X", "0")
        index = Path(self._tool("mbpath", name).strip())
        for file in ("cyrus.index", "cyrus.cache"):
            (index / file).unlink(missing_ok=True)
        self._tool("reconstruct", name)
        new = self.uidvalidity(user, folder)
        if new == old:
            raise CyrusHarnessError(f"reconstruct kept UIDVALIDITY {old} of {name}")
        return new

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[IMAPClient]:
        """``user`` logged in over plain IMAP on loopback (Debian allows plaintext logins)."""
        client = IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        # imaplib sends an APPEND's literal after the server's '+': with Nagle's algorithm
        # against delayed ACKs each message then waits ~40 ms (300 messages: 14 s, not 0.4 s).
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client.login(user, self._password(user).reveal())
            yield client
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.logout()

    # --- internals
    def _write_instance(self) -> None:
        for sub in _FOLDERS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        files = CyrusFiles(self.root, self.pki.cert_pem, self.pki.key_pem)
        self.conf.write_text(imapd_conf(files, self.shape, self._settings))
        values = {"CONF": str(self.conf), "BASE": str(self.root), "DAEMONS": str(DAEMONS),
                  "TOOLS": str(TOOLS), "IMAP_PORT": str(self.ports.imap),
                  "IMAPS_PORT": str(self.ports.imaps), "POP3_PORT": str(self.ports.pop3),
                  "POP3S_PORT": str(self.ports.pop3s)}
        (self.root / "cyrus.conf").write_text(render(CYRUS_CONF_TEMPLATE.read_text(), values))
        for name, password in [(ADMIN, self._admin),
                               *((u.address, self._password(u.address)) for u in self.users.all())]:
            subprocess.run([str(SASLPASSWD), "-p", "-c", "-u", SERVERNAME, "-f", str(files.sasldb),
                            name], input=password.reveal().encode(), check=True, timeout=30)
        subprocess.run(["chown", "-R", f"{CYRUS_USER}:mail", str(self.root)], check=True)

    def _password(self, user: str) -> Secret:
        for known in self.users.all():
            if known.address == user and known.password is not None:
                return known.password
        raise CyrusHarnessError(f"{user!r} is not a user of this Cyrus instance")

    def _make_mailboxes(self) -> None:
        client = IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        try:
            client.login(ADMIN, self._admin.reveal())
            for user in self.users.all():
                client.create_folder(self.shape.user_mailbox(user.address))
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.logout()
        self._mailboxes_made = True

    def _create(self, client: IMAPClient, folder: str) -> None:
        """Create the folder and each missing parent (Cyrus does not create parents)."""
        parts = folder.split("/")
        for depth in range(1, len(parts) + 1):
            name = self.shape.wire("/".join(parts[:depth]))
            if not client.folder_exists(name):
                client.create_folder(name)
                client.subscribe_folder(name)

    def _admin_name(self, user: str, folder: str) -> str:
        """The folder's name in the admin's "other users" namespace (what the tools take)."""
        parts = folder.split("/")
        if parts[0].upper() == "INBOX":
            parts = parts[1:]
        return self.shape.delimiter.join([self.shape.user_mailbox(user), *parts])

    def _status(self, user: str, folder: str, item: bytes) -> int:
        with self.session(user) as client:
            return int(client.folder_status(self.shape.wire(folder), [item])[item])

    def _tool(self, name: str, *args: str) -> str:
        """Run a cyrus-common tool as the cyrus user on this instance's configuration."""
        result = subprocess.run([str(TOOLS / name), "-C", str(self.conf), *args],
                                user=CYRUS_USER, capture_output=True, timeout=30, check=False)
        if result.returncode != 0:
            raise CyrusHarnessError(f"{name} {' '.join(args)} failed (exit {result.returncode}): "
                                    f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode()
