"""``ackmail check``: test a mailbox step by step and name the step that fails, with the fix.

The steps follow a connection's life: DNS, TCP connect, TLS (or the greeting then
STARTTLS), the token (or password), the login, the folder, the message count (for a
Microsoft Graph mailbox: the token, the mailbox, the folder; graph.py). Each
is its own small function; the first failure ends the check. Nothing here prints or
returns a secret: a refused token is described by its claims, never shown.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ingest.auth import (
    LoginCredentials,
    LoginRefused,
    TokenProviders,
    credentials_for,
    decode_claims,
    diagnose_login_failure,
    explain_token,
)
from ingest.auth.claims import MalformedToken
from ingest.check.base import CheckReport, Probe, Step, StepFailed, StepResult
from ingest.check.graph import GRAPH_STEPS
from ingest.config import MailboxConfig
from ingest.config.reader import Secret
from ingest.errors import AckmailError
from ingest.net.tls import explain_certificate
from ingest.sources.connect import boundary, tls_context
from ingest.sources.imap_folders import FolderNameInvalid, server_namespace, wire_name
from ingest.sources.imap_session import (
    imap_authenticate,
    imap_greeting,
    imap_starttls,
)
from ingest.sources.pop3_session import (
    pop3_authenticate,
    pop3_greeting,
    pop3_stls,
)

__all__ = ["CheckReport", "StepResult", "check_mailbox", "steps_for"]


def _where(probe: Probe) -> str:
    return f"{probe.box.host}:{probe.box.port}"


def step_dns(probe: Probe) -> str:
    try:
        infos = socket.getaddrinfo(probe.box.host, probe.box.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StepFailed(f"the host name '{probe.box.host}' does not resolve ({exc.strerror}); "
                         "check host") from None
    return f"{probe.box.host} -> {', '.join(sorted({str(i[4][0]) for i in infos}))}"


def _tcp(probe: Probe) -> socket.socket:
    try:
        return socket.create_connection((probe.box.host, probe.box.port), timeout=probe.timeout)
    except ConnectionRefusedError:
        raise StepFailed(f"nothing accepts connections on {_where(probe)} (connection refused); "
                         "check port and that the server is running") from None
    except TimeoutError:
        raise StepFailed(f"no answer from {_where(probe)} within {probe.timeout:.0f} s; a "
                         "firewall may drop the traffic, or the host is wrong") from None
    except OSError as exc:
        raise StepFailed(f"cannot connect to {_where(probe)} ({exc}); check host and port") \
            from None


def step_tcp(probe: Probe) -> str:
    _tcp(probe).close()
    return f"connected to {_where(probe)}"


def step_tls(probe: Probe) -> str:
    context = tls_context(probe.box)
    with _tcp(probe) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=probe.box.host) as tls:
                version, cert = tls.version(), tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as exc:
            raise StepFailed(f"{_where(probe)} is not trusted: {explain_certificate(exc)}") \
                from None
        except (ssl.SSLError, OSError) as exc:
            raise StepFailed(f"the TLS handshake with {_where(probe)} failed ({exc}); if this "
                             "port expects STARTTLS, set security = 'starttls'") from None
    return f"{version}, certificate for {_common_name(cert)}, valid until " \
           f"{cert.get('notAfter', '?')}"


def _common_name(cert: dict[str, Any]) -> str:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


def step_imap_greeting(probe: Probe) -> str:
    probe.imap = imap_greeting(probe.box, probe.timeout)
    return (probe.imap.welcome or b"").decode(errors="replace").strip()[:100]


def step_imap_starttls(probe: Probe) -> str:
    assert probe.imap is not None
    imap_starttls(probe.imap, probe.box)
    return "upgraded to TLS, certificate accepted"


def step_pop3_greeting(probe: Probe) -> str:
    probe.pop = pop3_greeting(probe.box, probe.timeout)
    return probe.pop.getwelcome().decode(errors="replace").strip()[:100]


def step_pop3_stls(probe: Probe) -> str:
    assert probe.pop is not None
    pop3_stls(probe.pop, probe.box)
    return "upgraded to TLS, certificate accepted"


def step_credentials(probe: Probe) -> str:
    box = probe.box
    if box.auth == "basic":
        probe.credentials = credentials_for(box, probe.providers)
        return f"password for {box.username} (from the configuration)"
    token, minutes = probe.fresh_token()
    return f"new access token for {token.account or box.username} from the identity " \
           f"provider, valid {minutes} min"


def _login(probe: Probe, authenticate: Callable[[LoginCredentials], str]) -> str:
    credentials = probe.credentials
    assert credentials is not None
    try:
        mechanism = authenticate(credentials)
    except LoginRefused as refused:
        token = credentials.secret if credentials.kind == "xoauth2" else None
        error = diagnose_login_failure(str(refused), probe.box, token=token)
        raise StepFailed(f"{error.cause}; {error.fix}", _token_notes(probe, credentials)) \
            from None
    return f"logged in as {credentials.username} ({mechanism})"


def _token_notes(probe: Probe, credentials: LoginCredentials) -> tuple[str, ...]:
    if credentials.kind != "xoauth2":
        return ()
    try:
        return tuple(explain_token(decode_claims(credentials.secret), probe.box))
    except MalformedToken as exc:
        return (str(exc),)


def _token_of(probe: Probe) -> Secret | None:
    credentials = probe.credentials
    return credentials.secret if credentials and credentials.kind == "xoauth2" else None


def step_imap_login(probe: Probe) -> str:
    client = probe.imap
    assert client is not None
    return _login(probe, lambda login: imap_authenticate(client, probe.box, login))


def step_pop3_login(probe: Probe) -> str:
    pop = probe.pop
    assert pop is not None
    return _login(probe, lambda login: pop3_authenticate(pop, probe.box, login))


def step_imap_folder(probe: Probe) -> str:
    client, box = probe.imap, probe.box
    assert client is not None
    namespace = server_namespace(client, {cap.upper() for cap in client.capabilities()})
    try:
        wire = {name: wire_name(box, name, namespace)
                for name in (box.folder, box.processed_folder, box.quarantine_folder) if name}
    except FolderNameInvalid as exc:
        raise StepFailed(str(exc).split(": ", 1)[1]) from None
    if not client.folder_exists(wire[box.folder]):
        names = ", ".join(sorted(str(f[2]) for f in client.list_folders())[:20])
        raise StepFailed(f"the folder '{box.folder}' does not exist; fix folder (the server "
                         f"has: {names})")
    selected = client.select_folder(wire[box.folder], readonly=True)
    for name in (box.processed_folder, box.quarantine_folder):
        if name and not client.folder_exists(wire[name]):
            probe.notes.append(f"'{name}' does not exist yet; the first poll creates it")
    return f"'{box.folder}' opened (UIDVALIDITY {int(selected[b'UIDVALIDITY'])}); " \
           f"{int(selected[b'EXISTS'])} messages"


def step_pop3_stat(probe: Probe) -> str:
    assert probe.pop is not None
    count, size = probe.pop.stat()
    return f"{count} messages ({size} bytes) in the maildrop"


def step_maildir(probe: Probe) -> str:
    path = probe.box.path
    if path is None or not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
        raise StepFailed(f"{path} is not a Maildir (it needs new/, cur/ and tmp/); fix path")
    waiting = sum(1 for entry in (path / "new").iterdir() if not entry.name.startswith("."))
    return f"{path}: {waiting} new messages"


def steps_for(box: MailboxConfig) -> list[tuple[str, Step]]:
    """The steps that test ``box``, in the order a connection goes through them."""
    if box.protocol == "maildir":
        return [("Maildir", step_maildir)]
    if box.protocol == "graph":
        return list(GRAPH_STEPS)
    imap = box.protocol == "imap"
    greeting = ("greeting", step_imap_greeting if imap else step_pop3_greeting)
    upgrade = ("STARTTLS", step_imap_starttls if imap else step_pop3_stls)
    transport = {"ssl": [("TLS", step_tls), greeting],
                 "starttls": [greeting, upgrade],
                 "none": [greeting]}[box.security]
    return [("DNS", step_dns), ("TCP connect", step_tcp), *transport,
            ("token" if box.auth != "basic" else "password", step_credentials),
            ("login", step_imap_login if imap else step_pop3_login),
            ("folder", step_imap_folder if imap else step_pop3_stat)]


def check_mailbox(box: MailboxConfig, providers: TokenProviders, *,
                  timeout: float = 15.0) -> CheckReport:
    """Run every step for ``box`` until one fails."""
    probe = Probe(box, providers, timeout)
    results: list[StepResult] = []
    try:
        for name, step in steps_for(box):
            try:
                with boundary(box, f"the {name} step", token=_token_of(probe)):
                    detail = step(probe)
            except StepFailed as exc:
                results.append(StepResult(name, False, str(exc), exc.notes))
                break
            except AckmailError as exc:
                results.append(StepResult(name, False, str(exc)))
                break
            results.append(StepResult(name, True, detail, tuple(probe.notes)))
            probe.notes.clear()
    finally:
        with suppress(Exception):
            probe.close()
    return CheckReport(box.name, tuple(results))
