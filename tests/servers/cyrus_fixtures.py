"""Pytest fixtures that start a real Cyrus IMAP (tests/servers/cyrus.py).

``cyrus`` is one instance per test, in the namespace of ``cyrus_shape`` (Debian's
``INBOX.`` with '.' unless the matrix asks for another). Per test rather than per module
because the tests count messages, UIDs and UIDVALIDITY from a fresh mailbox, and a start
costs ~0.2 s. At teardown the instance is stopped and its directory removed, and the
fixture checks that no process of its group is left.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.cyrus import CyrusServer
from tests.servers.cyrus_config import CYRUS_DEBIAN, CyrusShape
from tests.servers.mail_server import FolderShape
from tests.servers.server_process import live_group_members


@pytest.fixture
def cyrus_shape(server_shape: FolderShape) -> CyrusShape:
    """The namespace Cyrus is started in (``across_shapes`` varies it)."""
    return server_shape if isinstance(server_shape, CyrusShape) else CYRUS_DEBIAN


@pytest.fixture
def cyrus(cyrus_shape: CyrusShape) -> Iterator[CyrusServer]:
    """A running Cyrus with users bob, alice and shared (passwords only)."""
    server = CyrusServer(cyrus_shape).start()
    group = server.pid
    assert group is not None
    try:
        yield server
    finally:
        server.close()
    left = live_group_members(group)
    assert not left, f"Cyrus processes left running after the test: {left}"
