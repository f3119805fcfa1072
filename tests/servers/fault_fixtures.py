"""Fixtures for fault tests: ``ackmail`` as real processes, and a proxy in front of PostgreSQL.

``ackmail_processes`` starts commands (``poll``, ``dispatch --once``...) as processes and
kills every one still running when the test ends, pass or fail. ``pg_proxy`` is a TcpProxy
in front of the test PostgreSQL server; ``through_proxy(url, proxy)`` rewrites a database
URL to connect through it, so a test can cut the database away from one process only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.servers.ackmail_process import AckmailProcesses
from tests.servers.dovecot_fixtures import DovecotFactory, TcpProxyFactory
from tests.servers.postgres_fixtures import PG_ADMIN_URL
from tests.servers.tcp_proxy import TcpProxy


@pytest.fixture
def ackmail_processes(tmp_path: Path, dovecot_factory: DovecotFactory,
                      tcp_proxy_factory: TcpProxyFactory) -> Iterator[AckmailProcesses]:
    """Start ``ackmail`` processes (logs under tmp_path/processes); all killed after the test.

    It asks for the server factories only so that pytest tears it down first: the
    processes end before the servers they use, and their logs end with the test's faults.
    """
    processes = AckmailProcesses(tmp_path / "processes")
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
def pg_proxy(tcp_proxy_factory: TcpProxyFactory) -> TcpProxy:
    """A loopback proxy in front of the test PostgreSQL server (closed after the test)."""
    server = make_url(PG_ADMIN_URL)
    return tcp_proxy_factory(server.host or "127.0.0.1", server.port or 5432)


def through_proxy(database_url: str, proxy: TcpProxy) -> str:
    """``database_url`` (PostgreSQL) connecting through ``proxy`` instead of directly."""
    url = make_url(database_url)
    assert url.get_backend_name() == "postgresql", f"not a PostgreSQL URL: {url!r}"
    return url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
