"""The HTTP/1.1-over-TLS plumbing of the Graph test server: requests in, replies out.

Keep-alive (HTTP/1.1) as Graph has it, so a client's connection pool is exercised;
TLS is set up per connection on the connection's own thread.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class GraphRequest:
    """A request as the server's routes see it."""

    method: str
    path: str
    query: dict[str, str]
    target: str  # the path with its query, as sent
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(default=b"", repr=False)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            value = None
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class GraphReply:
    """Status, headers and body of an answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def json_reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
               ) -> GraphReply:
    return GraphReply(status, {"Content-Type": "application/json; odata.metadata=minimal"}
                      | (headers or {}), json.dumps(body).encode())


def error_reply(status: int, code: str, message: str, headers: dict[str, str]) -> GraphReply:
    """Graph's error body: code, message, and the ids support asks for."""
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
             "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    return json_reply(status, {"error": {"code": code, "message": message,
                                         "innerError": inner}}, headers)


Handle = Callable[[GraphRequest], GraphReply]


class TlsHttpServer(ThreadingHTTPServer):
    """A threading HTTPS server on 127.0.0.1 (a free port) that hands requests to ``handle``."""

    daemon_threads = True
    block_on_close = False  # keep-alive connections would hold stop() until they time out

    def __init__(self, context: ssl.SSLContext, handle: Handle) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context, self.handle = context, handle
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> TlsHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="test-graph",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client killed mid-request (the kill tests) is no server fault."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA reports it on its side
        with tls:
            super().finish_request(tls, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: TlsHttpServer
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Headers and body go out in two writes: without this, Nagle and the client's delayed
    # ACK hold every keep-alive answer for 40 ms.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        request = GraphRequest(self.command, url.path, dict(parse_qsl(url.query)), self.path,
                               {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.server.handle(request)
        self.send_response(reply.status)
        for name, value in (reply.headers | {"Content-Length": str(len(reply.body))}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output stays readable."""
