"""Pytest fixtures for the rules tests: the webhook receiver and SMTP servers.

Every server is real, on 127.0.0.1, started per test and stopped after it,
pass or fail. The SMTP servers share one session-wide test CA (key generation
is the slow part).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.config import SmtpConfig
from ingest.config.reader import Secret
from tests.servers.http_receiver import HttpReceiver
from tests.servers.smtp import SmtpServer
from tests.servers.tls import TestPki, make_test_pki

WEBHOOK_SECRET = "webhook-shared-secret-4f9a"
SMTP_USER = "notify@example.test"
SMTP_PASSWORD = "smtp-password-7c1e"

SmtpFactory = Callable[..., SmtpServer]


@pytest.fixture(scope="session")
def smtp_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A CA and a 127.0.0.1/localhost certificate for the SMTP servers."""
    return make_test_pki(Path(tmp_path_factory.mktemp("smtp-tls")))


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A webhook receiver that verifies signatures with WEBHOOK_SECRET."""
    with HttpReceiver(WEBHOOK_SECRET, hang_seconds=10.0) as receiver:
        yield receiver


@pytest.fixture
def make_smtp_server(smtp_pki: TestPki) -> Iterator[SmtpFactory]:
    """Start SMTP servers (STARTTLS unless implicit_tls=True); all stopped after the test."""
    started: list[SmtpServer] = []

    def make(**settings: Any) -> SmtpServer:
        settings.setdefault("users", {SMTP_USER: SMTP_PASSWORD})
        server = SmtpServer(smtp_pki, **settings).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: SmtpFactory) -> SmtpServer:
    """A STARTTLS submission server with AUTH PLAIN/LOGIN for SMTP_USER."""
    return make_smtp_server()


def smtp_config(server: SmtpServer, pki: TestPki, **overrides: Any) -> SmtpConfig:
    """``[smtp]`` settings for ``server``: basic auth as SMTP_USER, trusting the test CA."""
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "ssl" if server.implicit_tls else "starttls",
        "auth": "basic",
        "username": SMTP_USER,
        "password": Secret(SMTP_PASSWORD, "test"),
        "from_address": SMTP_USER,
        "ca_file": pki.ca_pem,
    }
    return SmtpConfig(**(settings | overrides))
