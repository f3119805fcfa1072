"""A real HTTP webhook receiver on 127.0.0.1 (ephemeral port) that records what it gets.

It checks ``X-Ackmail-Signature`` against the shared secret the way a real
receiver should (HMAC-SHA256 of the raw body, constant-time compare) and
answers 401 to a bad one. Tests script its next answers: a status code,
``HANG`` (never answer, so the client times out) or ``CLOSE`` (drop the
connection without answering).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
CLOSE = "close"
Behaviour = int | str


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived, and whether its signature verified."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None
    answered: Behaviour

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """The server; ``start()``/``stop()`` or ``with``; ``url`` is its base URL."""

    def __init__(self, secret: str | None = None, *, hang_seconds: float = 30.0) -> None:
        self.secret = secret
        self.hang_seconds = hang_seconds
        self.received: list[ReceivedRequest] = []
        self._script: list[Behaviour] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpReceiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.receiver = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="http-receiver",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers go
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the receiver first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer_next(self, *behaviours: Behaviour) -> None:
        """The next requests get these answers, in order; then 200 again."""
        with self._lock:
            self._script.extend(behaviours)

    def keys(self) -> Counter[str]:
        """How many requests arrived per Idempotency-Key."""
        with self._lock:
            return Counter(r.idempotency_key or "" for r in self.received)

    def accepted(self) -> list[ReceivedRequest]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if isinstance(r.answered, int)
                    and 200 <= r.answered < 300]

    # ---- used by the handler
    def _next(self, signature_ok: bool | None) -> Behaviour:
        with self._lock:
            scripted = self._script.pop(0) if self._script else 200
        if signature_ok is False:
            return 401
        return scripted

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.received.append(request)

    def _check(self, body: bytes, header: str | None) -> bool | None:
        if self.secret is None:
            return None
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected, header)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        receiver: HttpReceiver = self.server.receiver  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        signature_ok = receiver._check(body, headers.get("x-ackmail-signature"))
        behaviour = receiver._next(signature_ok)
        receiver._record(ReceivedRequest(self.command, self.path, headers, body, signature_ok,
                                         behaviour))
        if behaviour == HANG:
            receiver._release.wait(receiver.hang_seconds)
            self.close_connection = True
            return
        if behaviour == CLOSE:
            self.close_connection = True
            return
        assert isinstance(behaviour, int)
        answer = json.dumps({"status": behaviour}).encode()
        self.send_response(behaviour)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass
