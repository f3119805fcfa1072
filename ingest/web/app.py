"""The WSGI application and the threaded server from the standard library that runs it.

Bound to loopback (127.0.0.1, ::1, localhost) the pages are open to whoever can
reach the loopback interface, for requests addressed to a loopback name; bound
anywhere else, every route but /healthz needs ``Authorization: Bearer <[serve] token>``,
compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from socketserver import TCPServer, ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from sqlalchemy.exc import DBAPIError

from ingest.config import LOOPBACK_HOSTS
from ingest.config.reader import Secret
from ingest.errors import ConfigError, DatabaseUnavailable, StoreError
from ingest.web.http import HttpProblem, WebRequest, WebResponse, text
from ingest.web.routes import find_route
from ingest.web.site import Site

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def required_token(host: str, token: Secret | None) -> Secret | None:
    """The token requests must carry when bound to ``host`` (None on loopback).

    Off loopback without a token is refused: the pages would be open to the network.
    """
    if host in LOOPBACK_HOSTS:
        return None
    if token is None:
        raise ConfigError(
            f"ackmail serve on '{host}' (not loopback) needs [serve] token, which is not set; "
            'add token = { env = "NAME" } to [serve], or bind to 127.0.0.1'
        )
    return token


class OpsApp:
    """The WSGI callable: bearer check, routing, and one error page per failure kind."""

    def __init__(self, site: Site, *, token: Secret | None = None) -> None:
        self.site = site
        self.token = token

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = WebRequest.from_environ(environ)
        response = self.respond(request)
        start_response(response.status_line(), response.all_headers())
        return [] if request.method == "HEAD" else [response.body]

    def respond(self, request: WebRequest) -> WebResponse:
        """The response to one request; never raises."""
        if request.method not in ("GET", "HEAD"):
            return text("only GET and HEAD are served\n", HTTPStatus.METHOD_NOT_ALLOWED,
                        ("Allow", "GET, HEAD"))
        found = find_route(request.path)
        public = found is not None and found[0].public
        if not public and not self._authorized(request):
            return self._refusal()
        if found is None:
            return self._problem(HTTPStatus.NOT_FOUND, f"there is no page at {request.path}")
        route, match = found
        try:
            return route.handler(self.site, request, match)
        except HttpProblem as problem:
            return self._problem(problem.status, problem.message)
        except (StoreError, DatabaseUnavailable, DBAPIError) as exc:
            log.warning("%s: database unavailable: %s", request.path, exc)
            return self._problem(HTTPStatus.SERVICE_UNAVAILABLE,
                                 "the database cannot be reached; see /healthz and the log")
        except Exception:
            log.exception("%s failed", request.path)
            return self._problem(HTTPStatus.INTERNAL_SERVER_ERROR,
                                 "this page failed; the server log has the details")

    def _authorized(self, request: WebRequest) -> bool:
        if self.token is None:
            return _loopback_host(request.headers.get("host", ""))
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = self.token.reveal().encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), expected
        )

    def _refusal(self) -> WebResponse:
        if self.token is None:
            return text("this server answers only requests addressed to 127.0.0.1, ::1 or "
                        "localhost; bind it elsewhere with a [serve] token to serve other "
                        "names\n", HTTPStatus.FORBIDDEN)
        return text("a bearer token is required: send 'Authorization: Bearer <[serve] "
                    "token>'\n", HTTPStatus.UNAUTHORIZED,
                    ("WWW-Authenticate", 'Bearer realm="ackmail"'))

    def _problem(self, status: HTTPStatus, message: str) -> WebResponse:
        page = self.site.page("error.html", status=status, message=message)
        return WebResponse(status, page.body)


def _loopback_host(header: str) -> bool:
    """Without a token, only requests addressed to a loopback name are served.

    A web page elsewhere could otherwise point its own domain at 127.0.0.1 (DNS
    rebinding) and read the pages through a local browser; its Host header gives it away.
    """
    host = header.rsplit(":", 1)[0] if not header.endswith("]") else header
    return host.strip("[]").lower() in LOOPBACK_HOSTS


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the logger (visible with -v), not to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """A slow page or scrape does not hold up /healthz."""

    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's FQDN; the bound address will do.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def make_server(app: OpsApp, host: str, port: int) -> WSGIServer:
    """A server bound to ``host:port`` (0: any free port), not yet serving."""
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        server = server_class((host, port), _QuietHandler)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
        ) from None
    server.set_app(app)
    return server


@contextmanager
def serving(server: WSGIServer) -> Iterator[WSGIServer]:
    """Serve in a background thread while inside; shut down and close on the way out."""
    thread = threading.Thread(target=server.serve_forever, name="ackmail-serve", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def base_url(server: WSGIServer) -> str:
    """``http://host:port`` of a bound server."""
    host = server.server_name
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.server_port}"
