"""A real SMTP submission server for tests: aiosmtpd on 127.0.0.1 with TLS and AUTH.

STARTTLS (required before AUTH and MAIL) or implicit TLS, using the loopback
certificate from tests/servers/tls.py. AUTH PLAIN/LOGIN checks a user table;
AUTH XOAUTH2 checks the bearer token as Exchange Online would: an RS256 JWT
signed by the test identity provider's key, from its issuer, for the Exchange
audience; a user token must name the SASL user (``upn``), an app token may send
as the mailbox it names. Every accepted message is recorded with its envelope,
login and TLS state. Tests can make the next DATA commands fail with a reply.
"""

from __future__ import annotations

import base64
import collections
import socket
import threading
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, cast

import jwt
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.tls import TestPki

EXCHANGE_AUDIENCE = "https://outlook.office365.com"
REFUSED = "535 5.7.3 Authentication unsuccessful"


@dataclass(frozen=True)
class BearerCheck:
    """What an XOAUTH2 token must be: signed by this key, from this issuer, for this audience."""

    public_key_pem: bytes
    issuer: str
    audience: str = EXCHANGE_AUDIENCE


@dataclass(frozen=True)
class Login:
    mechanism: str
    user: str


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: Login | None
    tls: bool

    def message(self) -> EmailMessage:
        return cast(EmailMessage, BytesParser(policy=default_policy).parsebytes(self.data))


class _LongLineSMTP(SMTP):
    # Real submission servers take long AUTH lines (RFC 4954: 12288 octets); JWTs need it.
    line_length_limit = 16384
    command_size_limit = 16384
    command_size_limits = collections.defaultdict(lambda: 16384)  # noqa: RUF012 (aiosmtpd's shape)


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS encrypts before AUTH; aiosmtpd only knows STARTTLS and warns.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _LongLineSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpServer:
    """The server; ``start()``/``stop()`` or ``with``; ``host``/``port`` to connect to."""

    pki: TestPki
    implicit_tls: bool = False
    users: dict[str, str] = field(default_factory=dict)
    bearer: BearerCheck | None = None
    require_auth: bool = True
    auth_exclude: tuple[str, ...] = ()  # e.g. ("PLAIN",) to make clients use LOGIN
    received: list[ReceivedMail] = field(default_factory=list)
    refused_tokens: list[str] = field(default_factory=list)  # why each XOAUTH2 was refused
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self._controller: _Controller | None = None

    def start(self) -> SmtpServer:
        self.port = _free_port()
        context = self.pki.server_context()
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=context if self.implicit_tls else None,
            tls_context=None if self.implicit_tls else context,
            require_starttls=not self.implicit_tls,
            auth_required=self.require_auth,
            # aiosmtpd only counts STARTTLS as TLS; implicit TLS is encrypted from the start.
            auth_require_tls=not self.implicit_tls,
            authenticator=self._password_login,
            auth_exclude_mechanism=self.auth_exclude,
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, count: int, reply: str = "451 4.3.0 Temporary failure, try again") -> None:
        """The next ``count`` DATA commands are answered with ``reply``."""
        with self._lock:
            self._failures.extend([reply] * count)

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [mail.message() for mail in self.received]

    # ---- used by the handler
    def _password_login(self, server: SMTP, session: Session, envelope: Envelope,
                        mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        ok = user in self.users and self.users[user] == password
        return AuthResult(success=ok, handled=False, auth_data=Login(mechanism, user))

    def _check_bearer(self, user: str, token: str) -> str:
        """'' when ``token`` lets ``user`` send, else why not."""
        if self.bearer is None:
            return "XOAUTH2 is not enabled"
        try:
            claims = jwt.decode(token, self.bearer.public_key_pem, algorithms=["RS256"],
                                audience=self.bearer.audience, issuer=self.bearer.issuer)
        except jwt.PyJWTError as exc:
            return f"{type(exc).__name__}: {exc}"
        if claims.get("idtyp") == "user" and claims.get("upn", "").lower() != user.lower():
            return f"token is for {claims.get('upn')}, not {user}"
        return ""

    def _take_failure(self) -> str | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.append(mail)


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob: Any = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False)
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        problem = self.owner._check_bearer(user, token)
        if problem:
            self.owner.refused_tokens.append(problem)
            return AuthResult(success=False, handled=False, message=REFUSED)
        return AuthResult(success=True, auth_data=Login("XOAUTH2", user))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self.owner._take_failure()
        if failure is not None:
            return failure
        login = session.auth_data if isinstance(session.auth_data, Login) else None
        self.owner._record(ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=_as_bytes(envelope.original_content or envelope.content),
            login=login,
            tls=session.ssl is not None or self.owner.implicit_tls,
        ))
        return "250 2.0.0 OK queued"


def _as_bytes(content: bytes | str | None) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    return content or b""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
