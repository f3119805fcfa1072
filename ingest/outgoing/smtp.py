"""Building outgoing mail and submitting it through ``[smtp]`` (then ``[smtp.backup]``).

Submission: implicit TLS (``ssl``) or ``starttls`` with certificate checks
(``ca_file`` adds trust), then AUTH PLAIN/LOGIN with the password, or XOAUTH2
with a token from ``ingest.auth`` (Microsoft 365 SMTP AUTH), through the login the
mail sources use (``ingest.auth.log_in_with_retry``: a refused token is retried once,
fresh). SMTP's own reply
codes decide what a failure means: 4xx and network faults are transient (retry),
5xx is permanent. The backup server is tried whenever the primary fails.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime

from ingest import __version__
from ingest.auth import (
    AuthError,
    LoginRefused,
    Mechanism,
    SaslResponder,
    TokenProviders,
    log_in_with_retry,
)
from ingest.auth.base import LoginCredentials
from ingest.config import SmtpConfig
from ingest.errors import AckmailError, ConfigError, PermanentError, TransientError
from ingest.net.tls import client_context, explain_certificate
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 30.0
MARK_HEADER = "X-Ackmail"
OWN_MESSAGE_ID_PREFIX = "ackmail."
# RFC 3834: machine-sent answers carry this, so responders (and ackmail) never answer them.
NOTIFICATION_HEADERS: Mapping[str, str] = {"Auto-Submitted": "auto-replied"}


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
    domain: str = "ackmail.invalid",
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A plain-text (optionally also HTML) message marked as ackmail's own."""
    message = EmailMessage(policy=default_policy)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id or own_message_id(domain)
    message[MARK_HEADER] = __version__
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def own_message_id(domain: str) -> str:
    """A Message-ID ackmail recognises as its own if the mail ever comes back to it."""
    return f"<{OWN_MESSAGE_ID_PREFIX}{secrets.token_hex(10)}@{domain}>"


class Mailer:
    """Submits messages through the configured SMTP server, falling back to the backup."""

    def __init__(self, smtp: SmtpConfig, providers: TokenProviders, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.smtp = smtp
        self.providers = providers
        self.timeout = timeout

    @property
    def sender(self) -> str:
        """The From address: ``from_address``, else the login user name."""
        address = self.smtp.from_address or self.smtp.username
        if not address:
            raise ConfigError("[smtp] has neither from_address nor username; add "
                              "from_address = \"approvals@example.com\"")
        return address

    def send(self, message: EmailMessage) -> str:
        """Submit ``message``; returns ``host:port`` of the server that took it."""
        servers = [self.smtp, *([self.smtp.backup] if self.smtp.backup else [])]
        failures: list[AckmailError] = []
        for server in servers:
            try:
                self._send_via(server, message)
            except AckmailError as exc:
                log.warning("SMTP %s:%s did not take the message: %s", server.host,
                            server.port, exc)
                failures.append(exc)
                continue
            return f"{server.host}:{server.port}"
        raise _combined(failures)

    def _send_via(self, server: SmtpConfig, message: EmailMessage) -> None:
        where = f"SMTP {server.host}:{server.port}"
        try:
            with _connect(server, self.timeout) as client:
                self._login(client, server)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            refused = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in exc.recipients.items())
            raise _by_code(min(codes), f"{where} refused the recipients {refused}") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
                else str(exc.smtp_error)
            raise _by_code(exc.smtp_code, f"{where} answered {exc.smtp_code} {text}") from None
        except ssl.SSLCertVerificationError as exc:
            raise TransientError(f"{where}: TLS failed: {explain_certificate(exc)} "
                                 "([smtp] ca_file)") from None
        except ssl.SSLError as exc:
            raise TransientError(f"{where}: TLS failed ({exc.reason or exc}); check the server "
                                 "certificate and [smtp] ca_file") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"{where} could not be reached or dropped the connection "
                                 f"({type(exc).__name__}: {exc}); it will be retried") from None

    def _login(self, client: smtplib.SMTP, server: SmtpConfig) -> None:
        if server.auth == "none":
            return
        # smtplib's auth() does not greet first and takes a 503 "send EHLO first" for success.
        client.ehlo_or_helo_if_needed()
        try:
            log_in_with_retry(server, self.providers, lambda login: _authenticate(client, login))
        except AuthError as exc:
            raise PermanentError(str(exc)) from None
        except LoginRefused as exc:
            raise TransientError(
                f"SMTP {server.host}:{server.port} refused the OAuth2 token ({exc}), and a "
                "freshly fetched one too; check the app's SMTP.Send permission and that SMTP "
                "AUTH is enabled for the mailbox"
            ) from None


def _authenticate(client: smtplib.SMTP, login: LoginCredentials) -> None:
    """AUTH with the password (a refusal is an SMTP answer like any other) or the token."""
    if login.kind == "password":
        client.login(login.username, login.secret.reveal())
        return
    try:
        client.auth(Mechanism.XOAUTH2.value,
                    SaslResponder(Mechanism.XOAUTH2, login.username, login.secret),
                    initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        raise LoginRefused(str(exc.smtp_code)) from None


def _connect(server: SmtpConfig, timeout: float) -> smtplib.SMTP:
    context = client_context(server.ca_file, "[smtp]")
    if server.security == "ssl":
        return smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    if server.security == "starttls":
        try:
            client.starttls(context=context)
        except BaseException:
            client.close()
            raise
    return client


def _by_code(code: int, message: str) -> AckmailError:
    if 400 <= code < 500:
        return TransientError(f"{message}; it will be retried")
    return PermanentError(f"{message}; retrying will not help until the cause is fixed")


def _combined(failures: list[AckmailError]) -> AckmailError:
    text = " / then ".join(str(exc) for exc in failures)
    if any(isinstance(exc, TransientError) for exc in failures):
        return TransientError(text)
    return PermanentError(text)
