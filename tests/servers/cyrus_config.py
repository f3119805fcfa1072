"""The configuration of a test Cyrus IMAP: Debian's packaged files, changed only where an
instance in a temp dir on loopback needs it, and the folder shapes it can be started in.

``imapd.conf`` is made from the package's /etc/imapd.conf line by line: each setting in
``_overrides`` replaces the packaged line (the old value and the reason are written above it
as a comment); the settings Debian leaves unset are appended the same way. Everything else
(``altnamespace: no``, ``autocreate_quota``, ``allowplaintext: yes``, ``hashimapspool``, the
SASL defaults...) stays as packaged. ``cyrus.conf`` is a template of Debian's /etc/cyrus.conf
in ``tests/servers/cyrus/`` whose header lists its changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.servers.mail_server import FolderShape

PACKAGED_IMAPD_CONF = Path("/etc/imapd.conf")
CYRUS_CONF_TEMPLATE = Path(__file__).with_name("cyrus") / "cyrus.conf"
ADMIN = "cyrusadmin"
SERVERNAME = "localhost"
_SETTING = re.compile(r"^([A-Za-z0-9_-]+):\s*(.*)$")


@dataclass(frozen=True)
class CyrusShape(FolderShape):
    """Cyrus' namespace settings and the personal namespace they give."""

    unixhierarchysep: bool

    def user_mailbox(self, user: str) -> str:
        """The admin's name of ``user``'s INBOX (Cyrus' "other users" namespace)."""
        return f"user{self.delimiter}{user}"


# Debian's /etc/imapd.conf: altnamespace and unixhierarchysep both 'no'.
CYRUS_DEBIAN = CyrusShape("cyrus", "INBOX.", ".", unixhierarchysep=False)
# The compiled-in default of unixhierarchysep, with Debian's altnamespace: 'no'.
CYRUS_UNIX_SEPARATOR = CyrusShape("cyrus-unixhierarchysep", "INBOX/", "/",
                                  unixhierarchysep=True)
CYRUS_SHAPES = (CYRUS_DEBIAN, CYRUS_UNIX_SEPARATOR)


@dataclass(frozen=True)
class CyrusFiles:
    """Where an instance keeps what imapd.conf points at."""

    base: Path
    cert_pem: Path
    key_pem: Path

    @property
    def sasldb(self) -> Path:
        """The instance's own SASL password database."""
        return self.base / "sasldb2"


def _overrides(files: CyrusFiles, shape: CyrusShape) -> dict[str, tuple[str, str]]:
    """Setting -> (value, why it differs from the package)."""
    base = files.base
    own = "the packaged path belongs to the system instance"
    return {
        "configdirectory": (f"{base}/conf", own),
        "proc_path": (f"{base}/run/proc", own),
        "mboxname_lockpath": (f"{base}/run/lock", own),
        "partition-default": (f"{base}/spool", own),
        "partition-news": (f"{base}/news", own),
        "newsspool": (f"{base}/news", own),
        "sievedir": (f"{base}/sieve", own),
        "lmtpsocket": (f"{base}/conf/socket/lmtp", own),
        "idlesocket": (f"{base}/conf/socket/idle", own),
        "notifysocket": (f"{base}/conf/socket/notify", own),
        "unixhierarchysep": ("yes" if shape.unixhierarchysep else "no",
                             f"the folder shape of this instance ({shape.name})"),
        "popminpoll": ("0", "Debian's 1 (minute) refuses a second POP3 login within a minute; "
                            "the tests poll twice in a second"),
        "servername": (SERVERNAME, "the SASL realm of saslpasswd2 -u; unset it is the host name"),
        "admins": (ADMIN, "the account that creates the users' mailboxes"),
        "sasl_auxprop_plugin": ("sasldb", "Debian's commented default, made explicit"),
        "sasl_sasldb_path": (str(files.sasldb), "the instance's own users, not /etc/sasldb2"),
        "tls_server_cert": (str(files.cert_pem), "the tests' CA; Debian ships TLS commented out"),
        "tls_server_key": (str(files.key_pem), "the tests' CA; Debian ships TLS commented out"),
    }


def imapd_conf(files: CyrusFiles, shape: CyrusShape, settings: Mapping[str, str] | None = None,
               packaged: Path = PACKAGED_IMAPD_CONF) -> str:
    """This instance's imapd.conf: the packaged one with ``_overrides`` applied, then the
    ``settings`` a test asks for (e.g. ``{"popminpoll": "1"}``, Debian's value)."""
    overrides = _overrides(files, shape) | {
        name: (value, "set by the test") for name, value in (settings or {}).items()}
    lines = [f"# Made by tests/servers/cyrus_config.py from {packaged}; changes are marked."]
    for line in packaged.read_text().splitlines():
        setting = _SETTING.match(line)
        if setting and setting.group(1) in overrides:
            name, old = setting.groups()
            value, why = overrides.pop(name)
            lines += [f"# test instance: was '{old}': {why}", f"{name}: {value}"]
        else:
            lines.append(line)
    lines.append("# --- test instance: settings the package leaves unset")
    for name, (value, why) in overrides.items():
        lines += [f"# {why}", f"{name}: {value}"]
    return "\n".join(lines) + "\n"
