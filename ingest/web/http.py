"""The little HTTP the ops server needs: a parsed request, a response, and the headers every
response carries.

Pages run no script and load nothing from elsewhere, so the Content-Security-Policy
allows only the server's own stylesheet: even a rendering bug could not run injected
script.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from ingest.errors import UserError

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class WebRequest:
    """What a handler reads from a request: method, path, query and headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> WebRequest:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        return cls(
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=str(environ.get("PATH_INFO", "/")) or "/",
            query=parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=False),
            headers=headers,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, stripped; ``default`` when absent or blank."""
        values = self.query.get(name)
        value = values[0].strip() if values else ""
        return value or default


@dataclass(frozen=True)
class WebResponse:
    """Status, content type and body; the app adds the security headers."""

    status: HTTPStatus
    body: bytes
    content_type: str = HTML
    headers: tuple[tuple[str, str], ...] = field(default=())

    def status_line(self) -> str:
        return f"{self.status.value} {self.status.phrase}"

    def all_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *SECURITY_HEADERS,
            *self.headers,
        ]


def html(body: str, status: HTTPStatus = HTTPStatus.OK) -> WebResponse:
    """An HTML page."""
    return WebResponse(status, body.encode("utf-8"))


def json_response(data: Any, status: HTTPStatus = HTTPStatus.OK) -> WebResponse:
    """A JSON document."""
    return WebResponse(status, json.dumps(data, indent=2).encode("utf-8"), "application/json")


def text(body: str, status: HTTPStatus, *headers: tuple[str, str]) -> WebResponse:
    """A plain-text answer (errors outside the pages: 401, 405)."""
    return WebResponse(status, body.encode("utf-8"), "text/plain; charset=utf-8", headers)


def redirect(location: str) -> WebResponse:
    """A redirect to another page of this server."""
    return WebResponse(HTTPStatus.FOUND, b"", "text/plain; charset=utf-8",
                       (("Location", location),))


class HttpProblem(UserError):
    """A request the server refuses (bad parameter, unknown id): status and one sentence."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
