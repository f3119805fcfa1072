"""The folder namespaces the Dovecot harness can be started with (part of the interop matrix).

Each shape is how a kind of server names folders: Debian's packaged Dovecot (no namespace
block: Maildir++ with '.'), Exchange's '/', and Courier's and Cyrus' personal prefix
'INBOX.'. The harness' own helpers take folder paths written with '/', as ackmail's
configuration does, and send them to doveadm in the shape's form.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.servers.mail_server import FolderShape


@dataclass(frozen=True)
class DovecotShape(FolderShape):
    """One folder namespace and the dovecot.conf block that gives it."""

    namespace_block: str


DEBIAN_DEFAULT = DovecotShape("debian-default", "", ".", namespace_block="")
SLASH = DovecotShape("slash", "", "/",
                     namespace_block="namespace inbox {\n  inbox = yes\n  separator = /\n}\n")
INBOX_PREFIX = DovecotShape(
    "inbox-prefix", "INBOX.", ".",
    namespace_block='namespace inbox {\n  inbox = yes\n  prefix = INBOX.\n  separator = .\n}\n')

SHAPES = (DEBIAN_DEFAULT, SLASH, INBOX_PREFIX)
