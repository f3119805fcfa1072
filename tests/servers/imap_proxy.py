"""A loopback IMAPS proxy in front of Dovecot that answers the way Exchange Online does.

Dovecot never refuses a good session, throttles, or ends a session when its token
expires; Exchange Online does all of these. The proxy terminates TLS with the test
PKI's certificate, speaks TLS to Dovecot, passes every line through, and, when told
to, answers in Exchange Online's words (``EXCHANGE_*`` below; the report of the
issue lists where each text comes from). Only commands are parsed, so server
literals (message bodies) pass through untouched.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from tests.servers.dovecot import DovecotServer

POLL_SECONDS = 0.05
# Exchange Online's texts, byte for byte as users report them.
EXCHANGE_NOT_CONNECTED = b"BAD User is authenticated but not connected."
EXCHANGE_AUTH_FAILED = b"NO AUTHENTICATE failed."
EXCHANGE_THROTTLED = b"Request is throttled. Suggested Backoff Time: 299961 milliseconds"
EXCHANGE_TOKEN_EXPIRED = b"* BYE Session invalidated - AccessTokenExpired"
EXCHANGE_IDLE_CLOSED = b"* BYE Connection is closed. 13"
EXCHANGE_IDLE_ACCEPTED = b"+ IDLE accepted, awaiting DONE command."


class Act(enum.Enum):
    """What the proxy does to the next connections (see ``ExchangeProxy.act``)."""

    PASS = "pass"                      # a plain proxy
    NOT_CONNECTED = "not connected"    # AUTHENTICATE works, every later command: BAD
    AUTH_FAILED = "auth failed"        # AUTHENTICATE answered NO, never reaches Dovecot
    THROTTLE_NO = "throttle NO"        # SELECT answered with a tagged NO, throttled
    THROTTLE_BAD = "throttle BAD"      # SELECT answered with a tagged BAD, throttled, BYE
    EXPIRE_IN_IDLE = "expire in IDLE"  # IDLE accepted, then BYE AccessTokenExpired
    EXPIRE_IN_FETCH = "expire in FETCH"  # UID FETCH answered BYE AccessTokenExpired
    IDLE_LIMIT = "idle limit"          # IDLE accepted, then BYE and close (idle timeout)


@dataclass
class _Plan:
    act: Act = Act.PASS
    times: int = 0  # connections still to treat so; 0 = pass through


@dataclass
class _Link:
    client: ssl.SSLSocket
    upstream: ssl.SSLSocket
    act: Act
    lock: threading.Lock = field(default_factory=threading.Lock)
    authenticated: bool = False
    closed: threading.Event = field(default_factory=threading.Event)

    def send(self, line: bytes) -> None:
        with self.lock:
            self.client.sendall(line + b"\r\n")

    def close(self) -> None:
        self.closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class ExchangeProxy:
    """Proxies 127.0.0.1:``port`` to ``server``'s IMAPS port; ``act`` arms a behaviour."""

    host = "127.0.0.1"

    def __init__(self, server: DovecotServer, *, idle_seconds: float = 0.3) -> None:
        self.server = server
        self.idle_seconds = idle_seconds  # how long an IDLE lasts before the BYE
        self._listener = socket.create_server((self.host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._plan = _Plan()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._links: list[_Link] = []
        self.connected_at: list[float] = []  # time.monotonic() of every accepted connection
        self.acted: list[Act] = []  # what each connection was treated with
        self._acceptor = threading.Thread(target=self._accept_loop, name="exchange-proxy",
                                          daemon=True)
        self._acceptor.start()

    def act(self, act: Act, times: int = 1) -> None:
        """Treat the next ``times`` connections with ``act``; later ones pass through."""
        with self._lock:
            self._plan = _Plan(act, times)

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed.set()
        self._acceptor.join()
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    def _next_act(self) -> Act:
        with self._lock:
            if self._plan.times <= 0:
                return Act.PASS
            self._plan.times -= 1
            return self._plan.act

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self._listener], [], [], POLL_SECONDS)
            if ready:
                client, _ = self._listener.accept()
                self.connected_at.append(time.monotonic())
                threading.Thread(target=self._serve, args=(client,), name="exchange-link",
                                 daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        act = self._next_act()
        self.acted.append(act)
        try:
            client = self.server.pki.server_context().wrap_socket(raw, server_side=True)
            upstream = self.server.client_context().wrap_socket(
                socket.create_connection((self.server.host, self.server.imaps_port), 5),
                server_hostname=self.server.host)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        link = _Link(client, upstream, act)
        with self._lock:
            self._links.append(link)
        pump = threading.Thread(target=self._pump_server, args=(link,), daemon=True)
        pump.start()
        try:
            self._read_commands(link, client.makefile("rb"))
        except (OSError, ValueError):
            pass
        finally:
            link.close()
            pump.join(5)

    def _pump_server(self, link: _Link) -> None:
        """Server to client, unchanged, noting a successful AUTHENTICATE."""
        reader = link.upstream.makefile("rb")
        with contextlib.suppress(OSError, ValueError):
            while chunk := reader.readline():
                if b" OK " in chunk and b"Logged in" in chunk:
                    link.authenticated = True
                with link.lock:
                    link.client.sendall(chunk)
        link.close()

    def _read_commands(self, link: _Link, reader: BinaryIO) -> None:
        while line := reader.readline():
            words = line.split()
            tag, command = [*words, b"", b""][:2]
            if not self._answer(link, tag, command.upper(), words, reader):
                with link.lock:
                    link.upstream.sendall(line)
            if link.closed.is_set():
                return

    def _answer(self, link: _Link, tag: bytes, command: bytes, words: list[bytes],
                reader: BinaryIO) -> bool:
        """Answer one command as Exchange would; False passes it on to Dovecot."""
        act = link.act
        if act is Act.AUTH_FAILED and command == b"AUTHENTICATE":
            if len(words) < 4:  # no SASL-IR: take the client's response first
                link.send(b"+ ")
                reader.readline()
            link.send(tag + b" " + EXCHANGE_AUTH_FAILED)
            return True
        if act is Act.NOT_CONNECTED and link.authenticated and command != b"LOGOUT":
            link.send(tag + b" " + EXCHANGE_NOT_CONNECTED)
            return True
        if act in (Act.THROTTLE_NO, Act.THROTTLE_BAD) and command in (b"SELECT", b"EXAMINE"):
            if act is Act.THROTTLE_NO:
                link.send(tag + b" NO " + EXCHANGE_THROTTLED)
                return True
            link.send(tag + b" BAD " + EXCHANGE_THROTTLED)
            link.send(b"* BYE Connection closed. 14")
            link.close()
            return True
        if act is Act.EXPIRE_IN_FETCH and command == b"UID" and words[2:3] == [b"FETCH"]:
            link.send(EXCHANGE_TOKEN_EXPIRED)
            link.close()
            return True
        if act in (Act.EXPIRE_IN_IDLE, Act.IDLE_LIMIT) and command == b"IDLE":
            link.send(EXCHANGE_IDLE_ACCEPTED)
            time.sleep(self.idle_seconds)
            link.send(EXCHANGE_TOKEN_EXPIRED if act is Act.EXPIRE_IN_IDLE
                      else EXCHANGE_IDLE_CLOSED)
            link.close()
            return True
        return False
