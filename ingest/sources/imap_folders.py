"""Folder paths as the user writes them ('ackmail/processed') in the server's own form.

Servers differ in the hierarchy delimiter ('/' on Exchange, '.' on a Dovecot left at its
defaults) and in the personal namespace prefix ('INBOX.' on Courier and Cyrus). The
server's personal namespace is learnt once per session (NAMESPACE, else ``LIST "" ""``);
a path is then the prefix plus its parts joined with the delimiter. INBOX (any case) is
never prefixed. Non-ASCII names go as modified UTF-7, which imapclient does for ``str``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient

from ingest.config import MailboxConfig
from ingest.errors import ConfigError


class FolderNameInvalid(ConfigError):
    """A configured folder path that the server's hierarchy cannot hold."""


@dataclass(frozen=True)
class Namespace:
    """The server's personal namespace: the prefix of every folder, and the delimiter."""

    prefix: str
    delimiter: str | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def server_namespace(client: IMAPClient, capabilities: set[bytes]) -> Namespace:
    """The personal namespace (NAMESPACE where offered, else the root of ``LIST "" ""``)."""
    if b"NAMESPACE" in capabilities:
        personal = client.namespace().personal
        if personal:
            prefix, delimiter = personal[0]
            return Namespace(_text(prefix), _text(delimiter) or None)
    listed = client.list_folders("", "")
    delimiter = _text(listed[0][1]) if listed else ""
    return Namespace("", delimiter or None)


def _parts(box: MailboxConfig, path: str, namespace: Namespace) -> list[str]:
    parts = path.split("/")
    delimiter = namespace.delimiter
    for part in parts:
        if not part:
            raise FolderNameInvalid(
                f"mailbox '{box.name}': the folder '{path}' has an empty level; write it "
                "as levels separated by single '/', without a leading or trailing '/'")
        if delimiter and delimiter != "/" and delimiter in part:
            suggestion = "/".join(p for piece in parts for p in piece.split(delimiter))
            raise FolderNameInvalid(
                f"mailbox '{box.name}': the folder '{path}' cannot exist on {box.host}, whose "
                f"hierarchy delimiter is '{delimiter}'; separate levels with '/' (write "
                f"'{suggestion}') or choose a name without '{delimiter}'")
    if len(parts) > 1 and not delimiter:
        raise FolderNameInvalid(
            f"mailbox '{box.name}': the folder '{path}' has levels but {box.host} has no "
            "folder hierarchy; choose a name without '/'")
    return parts


def wire_names(box: MailboxConfig, path: str, namespace: Namespace) -> list[str]:
    """The server's names of the path and of each of its parents, outermost first."""
    parts = _parts(box, path, namespace)
    if parts[0].upper() == "INBOX":
        parts[0], prefix = "INBOX", ""
    else:
        prefix = namespace.prefix
    delimiter = namespace.delimiter or "/"
    return [prefix + delimiter.join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def wire_name(box: MailboxConfig, path: str, namespace: Namespace) -> str:
    """The server's name of a configured folder path."""
    return wire_names(box, path, namespace)[-1]
