"""The folder namespaces the Dovecot harness can be started with (the interop matrix).

Each shape is how a kind of server names folders: Debian's packaged Dovecot (no namespace
block: Maildir++ with '.'), Exchange's '/', and Courier's and Cyrus' personal prefix
'INBOX.'. The harness' own helpers take folder paths written with '/', as ackmail's
configuration does, and send them to doveadm in the shape's form.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DovecotShape:
    """One folder namespace: the dovecot.conf block, the prefix and the delimiter it gives."""

    name: str
    namespace_block: str
    prefix: str
    delimiter: str

    def wire(self, folder: str) -> str:
        """The server's name of a '/'-separated folder path (INBOX is never prefixed)."""
        parts = folder.split("/")
        if parts[0].upper() == "INBOX":
            return self.delimiter.join(["INBOX", *parts[1:]])
        return self.prefix + self.delimiter.join(parts)


DEBIAN_DEFAULT = DovecotShape("debian-default", "", "", ".")
SLASH = DovecotShape("slash", "namespace inbox {\n  inbox = yes\n  separator = /\n}\n", "", "/")
INBOX_PREFIX = DovecotShape(
    "inbox-prefix",
    'namespace inbox {\n  inbox = yes\n  prefix = INBOX.\n  separator = .\n}\n', "INBOX.", ".")

SHAPES = (DEBIAN_DEFAULT, SLASH, INBOX_PREFIX)
