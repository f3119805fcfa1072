"""A small Entra-shaped identity provider that MSAL talks to over real HTTPS, for tests.

Endpoints (as msal 1.39 uses them, see /work/shared/TEST-SERVERS.md):
``GET /<t>/v2.0/.well-known/openid-configuration``, ``POST /<t>/oauth2/v2.0/token``
(client_credentials, authorization_code + PKCE S256, rotating refresh_token,
device_code), ``POST /<t>/oauth2/v2.0/devicecode``, ``GET /<t>/oauth2/v2.0/authorize``
(a 302 to the loopback redirect, or with ``response_mode=form_post`` a self-submitting form).
Access tokens are RS256 JWTs shaped like Exchange Online's v1 tokens, so the Dovecot
harness can validate them with ``public_key_pem`` and ``issuer``. Tests steer it with
plain methods: register clients, approve device codes, inject AADSTS failures, revoke
a user's refresh tokens, and read the recorded requests.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.idp_assertion import AssertionRefused, check_assertion
from tests.servers.tls import TestPki

TENANT = "5b1e0c3a-7d2f-4c8e-9a61-0c4a11a0e5d1"
KID = "mock-key-1"
EXCHANGE = "https://outlook.office365.com"
USER_SCP = "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send"
APP_ROLES = ("IMAP.AccessAsApp", "POP.AccessAsApp")
GRAPH = "https://graph.microsoft.com"
# What an app or a user is granted on Microsoft Graph (the mail source's API).
GRAPH_GRANTS = {"roles": ["Mail.ReadWrite"], "scp": "Mail.ReadWrite"}
RESERVED = frozenset({"openid", "profile", "offline_access"})
# Entra's wording for the failures tests inject or the provider produces itself.
AADSTS = {
    7000215: ("invalid_client", "Invalid client secret provided. Ensure the secret being sent "
              "in the request is the client secret value, not the client secret ID"),
    7000222: ("invalid_client", "The provided client secret keys for app are expired"),
    7000218: ("invalid_client", "The request body must contain the following parameter: "
              "'client_assertion' or 'client_secret'"),
    700016: ("unauthorized_client", "Application with identifier was not found in the "
             "directory"),
    700027: ("invalid_client", "Client assertion contains an invalid signature"),
    700024: ("invalid_client", "Client assertion is not within its valid time range"),
    700082: ("invalid_grant", "The refresh token has expired due to inactivity"),
    50173: ("invalid_grant", "The provided grant has expired due to it being revoked"),
    70000: ("invalid_grant", "The provided value for the input parameter 'refresh_token' or "
            "'assertion' is not valid"),
    70016: ("authorization_pending", "OAuth 2.0 device flow error. Authorization is pending"),
    70019: ("expired_token", "Verification code expired"),
    501481: ("invalid_grant", "The Code_Verifier does not match the code_challenge supplied"),
    65001: ("invalid_grant", "The user or administrator has not consented to use the app"),
    50076: ("interaction_required", "Due to a configuration change made by your "
            "administrator, you must use multi-factor authentication"),
    50079: ("interaction_required", "Due to a configuration change made by your "
            "administrator, or because you moved to a new location, you must enroll in "
            "multi-factor authentication"),
    70043: ("invalid_grant", "The refresh token has expired or is invalid due to sign-in "
            "frequency checks by conditional access"),
    50057: ("invalid_grant", "The user account is disabled"),
    7000229: ("invalid_client", "The client application is missing service principal in the "
              "tenant"),
    53003: ("access_denied", "Access has been blocked by Conditional Access policies"),
    90002: ("invalid_request", "Tenant not found"),
    90033: ("temporarily_unavailable", "A transient error has occurred. Please try again"),
    50126: ("invalid_grant", "Error validating credentials due to invalid username or password"),
}


class OAuthError(Exception):
    """An Entra-style 400 answer: error, AADSTS description, codes, ids."""

    def __init__(self, code: int, reason: str | None = None, *,
                 failure: Failure | None = None) -> None:
        super().__init__(code)
        self.code, self.reason = code, reason
        self.status = failure.status if failure else 400
        self.error = failure.error if failure else None
        self.headers = ({"Retry-After": str(failure.retry_after)}
                        if failure and failure.retry_after is not None else {})

    def body(self) -> dict[str, Any]:
        error, text = AADSTS[self.code]
        error = self.error or error
        if self.reason:
            text = f"{text}. [Reason - {self.reason}]"
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return {"error": error, "error_codes": [self.code], "timestamp": stamp,
                "trace_id": trace, "correlation_id": correlation,
                "error_description": f"AADSTS{self.code}: {text}. Trace ID: {trace} "
                                     f"Correlation ID: {correlation} Timestamp: {stamp}"}


@dataclass(frozen=True)
class Failure:
    """An injected token-endpoint failure: the AADSTS code, and how it is answered."""

    code: int
    status: int = 400
    error: str | None = None  # overrides the code's usual OAuth error string
    retry_after: int | None = None  # seconds, sent as Retry-After


@dataclass(frozen=True)
class RecordedRequest:
    """One request the provider saw (no secrets: only names)."""

    method: str
    path: str
    grant_type: str | None
    client_id: str | None


@dataclass(frozen=True)
class Client:
    """An app registration: a secret (with expiry), a certificate, or a public client."""

    client_id: str
    secret: str | None = None
    secret_expires: datetime | None = None
    certificate_pem: bytes | None = None
    allow_public_flows: bool = False


@dataclass(frozen=True)
class Grant:
    """What an authorization code, device code or refresh token stands for."""

    client_id: str
    scope: str
    upn: str | None = None
    redirect_uri: str = ""
    challenge: str = ""
    nonce: str | None = None


Reply = tuple[int, dict[str, str], bytes]


class IdentityProvider:
    """The provider; ``start()``/``stop()`` (or ``with``) run it on 127.0.0.1, a free port."""

    def __init__(self, pki: TestPki, key: rsa.RSAPrivateKey | None = None, *,
                 tenant: str = TENANT, token_lifetime: int = 3600) -> None:
        self.pki, self.tenant, self.kid = pki, tenant, KID
        self.token_lifetime = token_lifetime
        self.auto_approve_as: str | None = None
        self.browser_user: str | None = None  # the account a browser "cookie" signs in as
        self.delay = 0.0  # seconds each token request takes, to widen races
        # What Graph tokens grant; a test takes Mail.ReadWrite away to see a 403.
        self.graph_grants: dict[str, Any] = dict(GRAPH_GRANTS)
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._codes: dict[str, Grant] = {}
        self._devices: dict[str, Grant] = {}
        self._user_codes: dict[str, str] = {}
        self._refresh: dict[str, Grant] = {}
        self._revoked: set[str] = set()
        self._failures: list[Failure] = []
        self._requests: list[RecordedRequest] = []
        self._assertions: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle and facts tests read
    def start(self) -> IdentityProvider:
        server = _Server(self, self.pki.server_context())
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="test-idp",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> IdentityProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the provider first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    @property
    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def ca_pem(self) -> str:
        return str(self.pki.ca_pem)

    # ---- steering
    def register_client(self, client_id: str, **settings: Any) -> Client:
        client = Client(client_id, **settings)
        with self._lock:
            self._clients[client_id] = client
        return client

    def approve_device_code(self, user_code: str, upn: str) -> None:
        with self._lock:
            device_code = self._user_codes[user_code]
            self._devices[device_code] = _with_user(self._devices[device_code], upn)

    def fail_next(self, count: int, code: int, **how: Any) -> None:
        """The next ``count`` token requests fail with AADSTS ``code`` (see ``Failure``)."""
        with self._lock:
            self._failures.extend([Failure(code, **how)] * count)

    def revoke_refresh_tokens(self, upn: str) -> None:
        with self._lock:
            gone = [rt for rt, grant in self._refresh.items() if grant.upn == upn]
            for rt in gone:
                del self._refresh[rt]
            self._revoked.update(gone)

    def requests(self, grant_type: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if grant_type in (None, r.grant_type)]

    def assertions(self) -> list[str]:
        """The client assertions (signed JWTs) received, oldest first."""
        with self._lock:
            return list(self._assertions)

    def live_refresh_tokens(self, upn: str) -> list[str]:
        with self._lock:
            return [rt for rt, grant in self._refresh.items() if grant.upn == upn]

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT"})

    # ---- request handling (called on server threads)
    def handle(self, method: str, path: str, form: dict[str, str]) -> Reply:
        tenant, _, route = path.lstrip("/").partition("/")
        with self._lock:
            self._requests.append(RecordedRequest(method, path, form.get("grant_type"),
                                                  form.get("client_id")))
        handler = self._routes().get((method, route))
        if handler is None or tenant != self.tenant:
            return _json(404, {"error": "not_found"})
        try:
            return handler(form)
        except OAuthError as exc:
            status, headers, body = _json(exc.status, exc.body())
            return status, headers | exc.headers, body

    def _routes(self) -> dict[tuple[str, str], Callable[[dict[str, str]], Reply]]:
        return {("GET", "v2.0/.well-known/openid-configuration"): self._discovery,
                ("POST", "oauth2/v2.0/token"): self._token,
                ("POST", "oauth2/v2.0/devicecode"): self._devicecode,
                ("GET", "oauth2/v2.0/authorize"): self._authorize}

    def _discovery(self, form: dict[str, str]) -> Reply:
        endpoint = f"{self.authority}/oauth2/v2.0"
        return _json(200, {"issuer": self.issuer, "authorization_endpoint": f"{endpoint}/authorize",
                           "token_endpoint": f"{endpoint}/token",
                           "device_authorization_endpoint": f"{endpoint}/devicecode",
                           "jwks_uri": f"{self.authority}/discovery/v2.0/keys"})

    def _token(self, form: dict[str, str]) -> Reply:
        time.sleep(self.delay)
        with self._lock:
            if self._failures:
                failure = self._failures.pop(0)
                raise OAuthError(failure.code, failure=failure)
            grants = {"client_credentials": self._client_credentials,
                      "authorization_code": self._authorization_code,
                      "refresh_token": self._refresh_token,
                      "urn:ietf:params:oauth:grant-type:device_code": self._device_code}
            grant = grants.get(form.get("grant_type", ""))
            if grant is None:
                return _json(400, {"error": "unsupported_grant_type"})
            return _json(200, grant(form))

    def _client_credentials(self, form: dict[str, str]) -> dict[str, Any]:
        client = self._authenticate(form, public_ok=False)
        claims = {"idtyp": "app", "roles": list(APP_ROLES), "oid": _oid(client.client_id),
                  "sub": _oid(client.client_id)}
        return self._tokens(client.client_id, form.get("scope", ""), claims)

    def _authorization_code(self, form: dict[str, str]) -> dict[str, Any]:
        client = self._authenticate(form, public_ok=True)
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client.client_id or \
                grant.redirect_uri != form.get("redirect_uri"):
            raise OAuthError(70000)
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            raise OAuthError(501481)
        return self._user_tokens(grant)

    def _refresh_token(self, form: dict[str, str]) -> dict[str, Any]:
        client = self._authenticate(form, public_ok=True)
        token = form.get("refresh_token", "")
        grant = self._refresh.pop(token, None)  # rotating: each refresh token works once
        if grant is None:
            raise OAuthError(50173 if token in self._revoked else 70000)
        if grant.client_id != client.client_id:
            raise OAuthError(70000)
        return self._user_tokens(grant)

    def _device_code(self, form: dict[str, str]) -> dict[str, Any]:
        self._authenticate(form, public_ok=True)
        grant = self._devices.get(form.get("device_code", ""))
        if grant is None:
            raise OAuthError(70019)
        if grant.upn is None and self.auto_approve_as:
            grant = _with_user(grant, self.auto_approve_as)
        if grant.upn is None:
            raise OAuthError(70016)
        del self._devices[form["device_code"]]
        return self._user_tokens(grant)

    def _devicecode(self, form: dict[str, str]) -> Reply:
        with self._lock:
            if form.get("client_id") not in self._clients:
                raise OAuthError(700016)
            device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
            self._devices[device_code] = Grant(form["client_id"], form.get("scope", ""))
            self._user_codes[user_code] = device_code
        uri = f"{self.base_url}/devicelogin"
        return _json(200, {"device_code": device_code, "user_code": user_code,
                           "verification_uri": uri, "expires_in": 900, "interval": 1,
                           "message": f"To sign in, use a web browser to open the page {uri} "
                                      f"and enter the code {user_code} to authenticate."})

    def _authorize(self, form: dict[str, str]) -> Reply:
        upn = self.browser_user or form.get("login_hint")
        redirect = form.get("redirect_uri", "")
        with self._lock:
            if form.get("client_id") not in self._clients:
                raise OAuthError(700016)
        if not upn or not redirect.startswith(("http://127.0.0.1:", "http://localhost:")) or \
                form.get("code_challenge_method") != "S256":
            return _json(400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = Grant(form["client_id"], form.get("scope", ""), upn, redirect,
                                      form.get("code_challenge", ""), form.get("nonce"))
        answer = {"code": code, "state": form.get("state", "")}
        if form.get("response_mode") == "form_post":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, _post_page(redirect, answer)
        return 302, {"Location": f"{redirect}?{urlencode(answer)}"}, b""

    def _authenticate(self, form: dict[str, str], *, public_ok: bool) -> Client:
        client = self._clients.get(form.get("client_id", ""))
        if client is None:
            raise OAuthError(700016)
        if "client_assertion" in form:
            self._check_assertion(client, form["client_assertion"])
        elif "client_secret" in form:
            if client.secret is None or not secrets.compare_digest(client.secret,
                                                                   form["client_secret"]):
                raise OAuthError(7000215)
            if client.secret_expires is not None and client.secret_expires < datetime.now(UTC):
                raise OAuthError(7000222)
        elif not (public_ok and (client.allow_public_flows or
                                 (client.secret is None and client.certificate_pem is None))):
            raise OAuthError(7000218)
        return client

    def _check_assertion(self, client: Client, assertion: str) -> None:
        self._assertions.append(assertion)
        try:
            check_assertion(client.certificate_pem, assertion, client_id=client.client_id,
                            audience=f"{self.authority}/oauth2/v2.0/token")
        except AssertionRefused as refused:
            raise OAuthError(refused.code, refused.reason) from None

    def _user_tokens(self, grant: Grant) -> dict[str, Any]:
        assert grant.upn is not None
        oid = _oid(grant.upn)
        claims = {"idtyp": "user", "upn": grant.upn, "unique_name": grant.upn, "scp": USER_SCP,
                  "oid": oid, "sub": _oid(f"{grant.client_id}/{grant.upn}")}
        answer = self._tokens(grant.client_id, grant.scope, claims)
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = Grant(grant.client_id, grant.scope, grant.upn)
        now = int(time.time())
        id_claims = {"aud": grant.client_id, "iss": self.issuer, "sub": claims["sub"], "oid": oid,
                     "tid": self.tenant, "preferred_username": grant.upn, "name": grant.upn,
                     "iat": now, "nbf": now, "exp": now + 3600}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        client_info = json.dumps({"uid": oid, "utid": self.tenant}).encode()
        return answer | {"refresh_token": refresh, "id_token": self.sign(id_claims),
                         "client_info": base64.urlsafe_b64encode(client_info).decode().rstrip("=")}

    def _tokens(self, client_id: str, scope: str, claims: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        resource_scopes = [s for s in scope.split() if s not in RESERVED]
        audience = _audience(resource_scopes)
        if audience == GRAPH:
            claims = claims | {name: grant for name, grant in self.graph_grants.items()
                               if name in claims}
        access = self.sign({"aud": audience, "iss": self.issuer,
                            "tid": self.tenant, "appid": client_id, "iat": now, "nbf": now,
                            "exp": now + self.token_lifetime, "ver": "1.0",
                            "uti": secrets.token_urlsafe(16)} | claims)
        return {"token_type": "Bearer", "scope": " ".join(resource_scopes),
                "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                "access_token": access}


def _audience(scopes: list[str]) -> str:
    """Exchange's own hosts map to its v1 audience; any other resource is its own."""
    resource = scopes[0].rsplit("/", 1)[0] if scopes else EXCHANGE
    return EXCHANGE if resource in (EXCHANGE, "https://outlook.office.com") else resource


def _with_user(grant: Grant, upn: str) -> Grant:
    return Grant(grant.client_id, grant.scope, upn)


def _oid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _post_page(action: str, fields: dict[str, str]) -> bytes:
    """Entra's form_post answer: a page whose form the browser submits to the redirect URI."""
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    return (f'<html><body onload="document.forms[0].submit()"><form method="POST" '
            f'action="{html.escape(action)}">{inputs}</form></body></html>').encode()


def _json(status: int, body: dict[str, Any]) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8",
                    "Cache-Control": "no-store"}, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    """TLS per connection, in the connection's own thread (a slow handshake blocks no one)."""

    daemon_threads = True
    block_on_close = True

    def __init__(self, provider: IdentityProvider, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider, self.context = provider, context

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA: its side reports the failure
        with tls:
            super().finish_request(tls, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self._reply(*self.server.provider.handle("GET", url.path, dict(parse_qsl(url.query))))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        path = urlsplit(self.path).path
        self._reply(*self.server.provider.handle("POST", path, dict(parse_qsl(body))))

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in (headers | {"Content-Length": str(len(body))}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would carry authorization codes."""
