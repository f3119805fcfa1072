"""A loopback TCP proxy that tests can tell to drop or refuse connections (fault tests).

Clients connect to ``proxy.port`` instead of the real server. ``cut()`` resets every live
connection, ``refuse(True)`` resets new ones at once, ``cut_after_bytes(n)`` resets a
connection once the server has sent it ``n`` more bytes (to break a FETCH half-way).
"Reset" means an abortive close (RST), which is what a crashed peer or a middlebox
dropping state looks like to the client.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType
from typing import Self

POLL_SECONDS = 0.05  # how soon a link thread notices cut(); also bounds close()
CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 5.0  # a peer that stops reading cannot hang a link thread (and cut()) forever
CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Link:
    """One proxied connection, pumped both ways by its own thread."""

    def __init__(self, client: socket.socket, upstream: socket.socket, budget: int | None) -> None:
        self.client = client
        self.upstream = upstream
        self.budget = budget  # server->client bytes still allowed; None = unlimited
        self.aborted = threading.Event()
        # Set before the sockets close, so a client that sees its connection end also
        # sees it gone from TcpProxy.live.
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tcp-proxy-link", daemon=True)

    def _run(self) -> None:
        peers = {self.client: self.upstream, self.upstream: self.client}
        reading = [self.client, self.upstream]
        try:
            while reading and not self.aborted.is_set():
                ready, _, _ = select.select(reading, [], [], POLL_SECONDS)
                for sock in ready:
                    if not self._forward(sock, peers[sock]):
                        reading.remove(sock)
        except OSError:
            self.aborted.set()
        finally:
            self.closed.set()
            close = _reset if self.aborted.is_set() else socket.socket.close
            close(self.client)
            close(self.upstream)

    def _forward(self, source: socket.socket, target: socket.socket) -> bool:
        """Copy one chunk; False once ``source`` has finished sending (its EOF is passed on)."""
        data = source.recv(CHUNK)
        if not data:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            return False
        if source is self.upstream and self.budget is not None:
            data, self.budget = data[: self.budget], max(self.budget - len(data), 0)
            if self.budget == 0:
                self.aborted.set()
        target.sendall(data)
        return True


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``; see the module doc."""

    host = "127.0.0.1"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((self.host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._refusing = False
        self._budget: int | None = None
        self._closed = threading.Event()
        self.accepted = 0  # connections accepted, refused ones included
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._acceptor.start()

    @property
    def live(self) -> int:
        """How many proxied connections are open now."""
        with self._lock:
            self._links = [link for link in self._links if not link.closed.is_set()]
            return len(self._links)

    def cut(self) -> None:
        """Reset every live connection (both sides); new connections still work."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.aborted.set()
        for link in links:
            link.thread.join()

    def refuse(self, refusing: bool = True) -> None:
        """While on, every new connection is reset right after it is accepted."""
        self._refusing = refusing

    def cut_after_bytes(self, limit: int | None) -> None:
        """Reset a connection once the server has sent it ``limit`` more bytes, counted from
        now for live connections and from the start for new ones; ``None`` disarms."""
        with self._lock:
            self._budget = limit
            for link in self._links:
                link.budget = limit

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._closed.set()
        self._acceptor.join()
        self._listener.close()
        self.cut()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self._listener], [], [], POLL_SECONDS)
            if ready:
                client, _ = self._listener.accept()
                self.accepted += 1
                self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        if self._refusing:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError:
            _reset(client)
            return
        client.settimeout(SEND_TIMEOUT)
        upstream.settimeout(SEND_TIMEOUT)
        with self._lock:
            link = _Link(client, upstream, self._budget)
            self._links.append(link)
        link.thread.start()
