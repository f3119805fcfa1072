"""What every test mail server gives the interop matrix (Dovecot, Cyrus): its users, ports and
certificate authority, and the few things a test does to a mailbox from the server's side
(deliver, count, create a folder, change UIDVALIDITY). Each server does these its own way
(doveadm for Dovecot, IMAP as the user and Cyrus' tools for Cyrus); tests that run across the
matrix use only this interface.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ingest.config.reader import Secret
from tests.servers.tls import TestPki


@dataclass(frozen=True)
class FolderShape:
    """A server's personal namespace: the prefix of every folder and the delimiter."""

    name: str
    prefix: str
    delimiter: str

    def wire(self, folder: str) -> str:
        """The server's name of a '/'-separated folder path (INBOX is never prefixed)."""
        parts = folder.split("/")
        if parts[0].upper() == "INBOX":
            return self.delimiter.join(["INBOX", *parts[1:]])
        return self.prefix + self.delimiter.join(parts)


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the test server; ``password`` is set only for basic-auth users."""

    address: str
    password: Secret | None = None


@dataclass(frozen=True)
class HarnessUsers:
    """The three mailboxes every instance has, one per way of logging in."""

    bob: MailUser  # password login (PLAIN / LOGIN)
    alice: MailUser  # delegated token whose 'upn' is alice
    shared: MailUser  # granted to the instance's app id (app-only) and to alice (delegated)

    def all(self) -> tuple[MailUser, ...]:
        """Every user, in a fixed order."""
        return (self.bob, self.alice, self.shared)


@dataclass(frozen=True)
class Ports:
    """The four loopback listeners of one instance."""

    imap: int
    imaps: int
    pop3: int
    pop3s: int

    @classmethod
    def free(cls) -> Ports:
        """Four distinct ports the kernel says are free now (all held open while choosing)."""
        sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(4)]
        try:
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for sock in sockets:
                sock.close()


class MailServer(Protocol):
    """A running test IMAP/POP3 server, as the matrix tests see it."""

    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    users: HarnessUsers
    pki: TestPki
    shape: FolderShape

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only this instance's CA."""
        ...

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store one message in the folder as new mail (a running IDLE hears of it)."""
        ...

    def deliver_many(self, user: str, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """Store many messages quickly (a backlog); returns the count."""
        ...

    def create_folder(self, user: str, folder: str) -> None:
        """Create (and subscribe) a folder; '/' separates levels whatever the shape."""
        ...

    def list_folder(self, user: str, folder: str = "INBOX") -> int:
        """How many messages the server sees in the folder."""
        ...

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY."""
        ...

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY (as a server-side rebuild would); returns it."""
        ...

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping all mail."""
        ...
