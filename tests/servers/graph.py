"""A Microsoft Graph-shaped mail API over real HTTPS on 127.0.0.1, for tests.

It checks the test identity provider's access tokens as Graph does (RS256 signature,
issuer, audience ``https://graph.microsoft.com``, ``roles`` Mail.ReadWrite for an app,
``scp`` Mail.ReadWrite for a user, which mailboxes an app is scoped to) and serves the
mailboxes of ``graph_mailbox.py``:

``GET /v1.0/users/{upn}/mailFolders[/{id}[/childFolders]]`` (``$filter=displayName eq``),
``POST .../childFolders`` (create), ``GET .../mailFolders/{id}/messages/delta`` (paged by
``Prefer: odata.maxpagesize`` or ``$top``; ``$skiptoken``/``$deltatoken`` links; 410 for
an invalidated token), ``GET .../messages/$count``, ``GET /messages/{id}/$value``,
``POST /messages/{id}/move`` (201, the message with a new REST id), ``PATCH
/messages/{id}``. Error bodies are Graph's ``{"error": {"code", "message", "innerError"}}``.

Tests steer faults with plain methods: ``fail_next`` (429/503 with Retry-After, ...),
``revoke_seen_tokens`` (the next request with a token already used answers 401),
``scope_app`` (an application access policy: 403 ErrorAccessDenied outside the app's
mailboxes), ``assign_rbac`` (RBAC for Applications: access without the token role),
``invalidate_delta``;
and read ``max_in_flight`` (Exchange's MailboxConcurrency limit of 4 is enforced: a
fifth concurrent request on a mailbox answers 429 ApplicationThrottled).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import jwt

from tests.servers.graph_http import (
    GraphReply,
    GraphRequest,
    TlsHttpServer,
    error_reply,
    json_reply,
)
from tests.servers.graph_mailbox import (
    ROOT,
    Folder,
    GraphFault,
    Mailbox,
    decode_state,
    message_json,
    not_found,
)
from tests.servers.idp import IdentityProvider
from tests.servers.tls import TestPki

GRAPH = "https://graph.microsoft.com"
MAIL_PERMISSION = "Mail.ReadWrite"
CONCURRENCY_LIMIT = 4
DEFAULT_PAGE = 10  # Graph's page size for messages delta without a preference
DENIED = "Access is denied. Check credentials and try again."
_PAGE_PREF = re.compile(r"odata\.maxpagesize=(\d+)")
_FILTER = re.compile(r"^displayName eq '((?:[^']|'')*)'$")
_USER_ROUTE = re.compile(r"^/v1\.0/users/([^/]+)(/.*)?$")


@dataclass(frozen=True)
class Fault:
    """An injected answer for the next request(s)."""

    status: int
    code: str
    message: str
    retry_after: float | None = None


@dataclass(frozen=True)
class SeenRequest:
    """One request the server answered (what tests assert on; no tokens)."""

    method: str
    path: str  # with its query
    status: int
    at: float
    prefer: str


class GraphServer:
    """The server; ``start()``/``stop()`` (or ``with``) run it on a free loopback port."""

    def __init__(self, pki: TestPki, idp: IdentityProvider, directory: Path) -> None:
        self.pki, self.idp, self.directory = pki, idp, directory
        self.delay = 0.0  # seconds each mail request takes, to make requests overlap
        self.max_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._mailboxes: dict[str, Mailbox] = {}
        self._in_flight: dict[str, int] = {}
        self._faults: list[Fault] = []
        self._scopes: dict[str, frozenset[str]] = {}
        self._rbac: dict[str, frozenset[str]] = {}
        self._seen_tokens: set[str] = set()
        self._revoked: set[str] = set()
        self._requests: list[SeenRequest] = []
        self._server: TlsHttpServer | None = None

    # ---- lifecycle
    def start(self) -> GraphServer:
        self._server = TlsHttpServer(self.pki.server_context(), self.handle).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> GraphServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """What ``graph_endpoint`` is set to."""
        assert self._server is not None, "start() the server first"
        return f"https://127.0.0.1:{self._server.port}"

    # ---- the mail, as tests set it up and read it
    def mailbox(self, upn: str) -> Mailbox:
        """The mailbox of ``upn``, created empty on first use."""
        with self._lock:
            key = upn.lower()
            if key not in self._mailboxes:
                self._mailboxes[key] = Mailbox(upn, self.directory / quote(key, safe="@."))
            return self._mailboxes[key]

    def deliver(self, user: str, raw: bytes, folder: str = "Inbox") -> str:
        """Put a message in ``folder`` (a display-name path) as transport would; its id."""
        box = self.mailbox(user)
        return box.deliver(raw, box.folder_at(folder)).immutable_id

    def deliver_many(self, user: str, messages: list[bytes], folder: str = "Inbox") -> int:
        for raw in messages:
            self.deliver(user, raw, folder)
        return len(messages)

    def list_folder(self, user: str, folder: str = "Inbox") -> int:
        """How many messages ``folder`` holds (0 when it does not exist)."""
        box = self.mailbox(user)
        with box.lock:
            found = box.find(folder)
            return len(found.messages) if found else 0

    def raw_messages(self, user: str, folder: str) -> list[bytes]:
        box = self.mailbox(user)
        with box.lock:
            found = box.find(folder)
            return [m.path.read_bytes() for m in found.messages.values()] if found else []

    def create_folder(self, user: str, folder: str) -> None:
        self.mailbox(user).folder_at(folder)

    # ---- steering
    def fail_next(self, count: int, status: int, code: str, message: str, *,
                  retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.extend([Fault(status, code, message, retry_after)] * count)

    def throttle_next(self, count: int, retry_after: float, status: int = 429) -> None:
        """Graph's answers when Exchange throttles an app (429) or is busy (503)."""
        code, text = (("ApplicationThrottled", "Application is over its MailboxConcurrency "
                        "limit.") if status == 429 else
                       ("ServiceUnavailable", "The service is temporarily unavailable."))
        self.fail_next(count, status, code, text, retry_after=retry_after)

    def scope_app(self, app_id: str, mailboxes: set[str]) -> None:
        """An application access policy (RestrictAccess): the app's Mail.ReadWrite role
        reaches only these mailboxes."""
        with self._lock:
            self._scopes[app_id] = frozenset(m.lower() for m in mailboxes)

    def assign_rbac(self, app_id: str, mailboxes: set[str]) -> None:
        """RBAC for Applications ("Application Mail.ReadWrite" on a scope): the app reaches
        these mailboxes whatever its token's roles say."""
        with self._lock:
            self._rbac[app_id] = frozenset(m.lower() for m in mailboxes)

    def revoke_seen_tokens(self) -> None:
        """Every access token used so far is refused (401) from now on."""
        with self._lock:
            self._revoked |= self._seen_tokens

    def invalidate_delta(self, user: str, folder: str = "Inbox") -> None:
        """Drop the folder's delta state: its links answer 410 Gone."""
        box = self.mailbox(user)
        with box.lock:
            box.folder_at(folder).generation += 1

    def requests(self, path_contains: str = "") -> list[SeenRequest]:
        with self._lock:
            return [r for r in self._requests if path_contains in r.path]

    # ---- request handling (on server threads)
    def handle(self, request: GraphRequest) -> GraphReply:
        try:
            upn, route = _user_route(request.path)
            with self._counted(upn):
                self._authorize(request, upn)
                self._injected_fault()
                time.sleep(self.delay)
                reply = self._route(request, self.mailbox(upn), route)
        except GraphFault as fault:
            reply = error_reply(fault.status, fault.code, fault.message, fault.headers)
        with self._lock:
            self._requests.append(SeenRequest(request.method, request.target, reply.status,
                                              time.monotonic(), request.header("Prefer")))
        return reply

    @contextmanager
    def _counted(self, upn: str) -> Iterator[None]:
        key = upn.lower()
        with self._lock:
            now = self._in_flight.get(key, 0) + 1
            self._in_flight[key] = now
            self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), now)
        try:
            if now > CONCURRENCY_LIMIT:
                raise GraphFault(429, "ApplicationThrottled",
                                 "Application is over its MailboxConcurrency limit.",
                                 {"Retry-After": "1"})
            yield
        finally:
            with self._lock:
                self._in_flight[key] -= 1

    def _authorize(self, request: GraphRequest, upn: str) -> None:
        scheme, _, token = request.header("Authorization").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GraphFault(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(token, self.idp.public_key_pem, algorithms=["RS256"],
                                audience=GRAPH, issuer=self.idp.issuer)
        except jwt.ExpiredSignatureError:
            raise GraphFault(401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.") from None
        except jwt.PyJWTError:
            raise GraphFault(401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid audience.") from None
        with self._lock:
            if claims["uti"] in self._revoked:
                raise GraphFault(401, "InvalidAuthenticationToken",
                                 "Access token has expired or is not yet valid.")
            self._seen_tokens.add(claims["uti"])
            scope = self._scopes.get(str(claims.get("appid")))
            assigned = upn.lower() in self._rbac.get(str(claims.get("appid")), ())
        if claims.get("idtyp") == "app":
            allowed = assigned or (MAIL_PERMISSION in claims.get("roles", ()) and (
                scope is None or upn.lower() in scope))
        else:
            allowed = MAIL_PERMISSION in str(claims.get("scp", "")).split() and \
                str(claims.get("upn", "")).lower() == upn.lower()
        if not allowed:
            raise GraphFault(403, "ErrorAccessDenied", DENIED)

    def _injected_fault(self) -> None:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            raise GraphFault(fault.status, fault.code, fault.message, headers)

    def _route(self, request: GraphRequest, box: Mailbox, route: str) -> GraphReply:
        parts = [p for p in route.split("/") if p]
        method, immutable = request.method, "ImmutableId" in request.header("Prefer")
        if parts[:1] == ["mailFolders"]:
            folder = box.folder(parts[1] if len(parts) > 1 else ROOT)
            tail = parts[2:] if len(parts) > 1 else ["childFolders"]
            if tail == [] and method == "GET":
                return json_reply(200, folder.json(len(box.children(folder.id))))
            if tail == ["childFolders"]:
                return self._child_folders(request, box, folder)
            if tail == ["messages", "delta"] and method == "GET":
                return self._delta(request, box, folder, immutable)
            if tail == ["messages", "$count"] and method == "GET":
                return GraphReply(200, {"Content-Type": "text/plain"},
                                  str(len(folder.messages)).encode())
        if parts[:1] == ["messages"] and len(parts) >= 2:
            return self._message(request, box, parts[1], parts[2:], immutable)
        raise GraphFault(400, "BadRequest", f"Resource not found for the segment '{route}'.")

    def _child_folders(self, request: GraphRequest, box: Mailbox, folder: Folder) -> GraphReply:
        if request.method == "POST":
            name = str(request.json().get("displayName") or "")
            created = box.create_folder(folder.id, name)
            return json_reply(201, created.json(0))
        children = box.children(folder.id)
        wanted = request.query.get("$filter")
        if wanted is not None:
            matched = _FILTER.match(wanted)
            if matched is None:
                raise GraphFault(400, "ErrorInvalidUrlQueryFilter",
                                 "The query filter contains one or more invalid nodes.")
            name = matched.group(1).replace("''", "'")
            children = [c for c in children if c.display_name.lower() == name.lower()]
        return json_reply(200, {"value": [c.json(len(box.children(c.id))) for c in children]})

    def _delta(self, request: GraphRequest, box: Mailbox, folder: Folder,
               immutable: bool) -> GraphReply:
        token = request.query.get("$skiptoken") or request.query.get("$deltatoken")
        watermark = 0
        if token:
            state = decode_state(token)
            if state.get("f") != folder.id or state.get("g") != folder.generation:
                raise GraphFault(410, "SyncStateNotFound", "The sync state generation is not "
                                 "found. The delta token is expired and data must be "
                                 "synchronized again.")
            watermark = int(state["w"])
        preferred = _PAGE_PREF.search(request.header("Prefer"))
        size = int(preferred.group(1) if preferred else request.query.get("$top", DEFAULT_PAGE))
        page = box.delta(folder, watermark, size, immutable=immutable)
        link = (f"{self.endpoint}/v1.0/users/{quote(box.upn)}/mailFolders/{folder.id}/messages/"
                f"delta?{'$deltatoken' if page.last else '$skiptoken'}={page.next_state}")
        body = {"@odata.context": f"{GRAPH}/v1.0/$metadata#Collection(message)",
                "value": page.items,
                "@odata.deltaLink" if page.last else "@odata.nextLink": link}
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if preferred else {}
        return json_reply(200, body, headers)

    def _message(self, request: GraphRequest, box: Mailbox, message_id: str, tail: list[str],
                 immutable: bool) -> GraphReply:
        folder, stored = box.message(message_id)
        if tail == ["$value"] and request.method == "GET":
            return GraphReply(200, {"Content-Type": "text/plain"}, stored.path.read_bytes())
        if tail == ["move"] and request.method == "POST":
            destination = box.folder(str(request.json().get("destinationId") or ""))
            moved = box.move(message_id, destination)
            return json_reply(201, message_json(moved, destination, immutable=immutable))
        if tail == [] and request.method == "PATCH":
            return json_reply(200, message_json(stored, folder, immutable=immutable))
        if tail == [] and request.method == "GET":
            return json_reply(200, message_json(stored, folder, immutable=immutable))
        raise not_found()


def _user_route(path: str) -> tuple[str, str]:
    matched = _USER_ROUTE.match(urlsplit(path).path)
    if matched is None:
        raise GraphFault(400, "BadRequest", "Resource not found for the segment 'v1.0'.")
    return matched.group(1).replace("%40", "@"), matched.group(2) or ""
