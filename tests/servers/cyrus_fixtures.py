"""Pytest fixtures that start a real Cyrus IMAP (tests/servers/cyrus.py).

``cyrus`` is one instance per test, in the namespace of ``cyrus_shape`` (Debian's
``INBOX.`` with '.' unless the matrix asks for another); ``cyrus_factory(settings=...)``
starts instances with imapd.conf settings of the test's own. Per test rather than per module
because the tests count messages, UIDs and UIDVALIDITY from a fresh mailbox, and a start
costs ~0.2 s. At teardown every instance is stopped and its directory removed, and the
fixture checks that no process of their groups is left.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import pytest

from tests.servers.cyrus import CyrusServer
from tests.servers.cyrus_config import CYRUS_DEBIAN, CyrusShape
from tests.servers.mail_server import FolderShape
from tests.servers.server_process import live_group_members


@pytest.fixture
def cyrus_shape(server_shape: FolderShape) -> CyrusShape:
    """The namespace Cyrus is started in (``across_shapes`` varies it)."""
    return server_shape if isinstance(server_shape, CyrusShape) else CYRUS_DEBIAN


class CyrusFactory(Protocol):
    """Starts a Cyrus in ``shape`` with imapd.conf ``settings`` changed by the test."""

    def __call__(self, *, shape: CyrusShape = CYRUS_DEBIAN,
                 settings: Mapping[str, str] | None = None) -> CyrusServer: ...


@pytest.fixture
def cyrus_factory() -> Iterator[CyrusFactory]:
    """Start as many Cyrus instances as a test needs; all are stopped and removed after it,
    and none may leave a process behind."""
    started: list[tuple[CyrusServer, int]] = []

    def start(*, shape: CyrusShape = CYRUS_DEBIAN,
              settings: Mapping[str, str] | None = None) -> CyrusServer:
        server = CyrusServer(shape, settings)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        assert server.pid is not None
        started.append((server, server.pid))
        return server

    yield start
    for server, _ in started:
        server.close()
    left = [pid for _, group in started for pid in live_group_members(group)]
    assert not left, f"Cyrus processes left running after the test: {left}"


@pytest.fixture
def cyrus(cyrus_factory: CyrusFactory, cyrus_shape: CyrusShape) -> CyrusServer:
    """A running Cyrus with users bob, alice and shared (passwords only)."""
    return cyrus_factory(shape=cyrus_shape)
