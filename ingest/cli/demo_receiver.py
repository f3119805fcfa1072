"""The demo's stand-in for a workflow system: a webhook receiver on loopback.

It checks each delivery's ``X-Ackmail-Signature`` with the shared secret, as a
real receiver must, and keeps what arrived so the demo can show it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """One webhook call as the receiver saw it."""

    event: str
    ref: str | None
    idempotency_key: str | None
    signature_ok: bool


@dataclass
class DemoReceiver:
    """A webhook receiver on 127.0.0.1 (free port), running in a daemon thread."""

    secret: bytes
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/ackmail"

    def __enter__(self) -> DemoReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _accept(self, body: bytes, headers: Any) -> None:
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        given = headers.get("X-Ackmail-Signature", "")
        payload = json.loads(body)
        self.deliveries.append(Delivery(
            event=payload.get("event", "?"), ref=(payload.get("request") or {}).get("ref"),
            idempotency_key=headers.get("Idempotency-Key"),
            signature_ok=hmac.compare_digest(expected, given)))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._accept(body, self.headers)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints what arrived itself."""

        return Handler
