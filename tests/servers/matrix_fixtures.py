"""The interop matrix: the same tests on every mail server shape the suite starts.

``across_shapes`` runs a test (taking ``mail_server``) on the three Dovecot namespaces and on
Cyrus IMAP at Debian's settings (``INBOX.`` with '.'); ``across_all_namespaces`` adds Cyrus
with ``unixhierarchysep: yes`` (``INBOX/`` with '/'), for the tests about folder names;
``across_servers`` runs on one shape of each implementation (for what namespaces do not
change, such as POP3); ``across_dovecot_shapes`` on the Dovecot shapes only (for the Dovecot
harness' own tests).
Cyrus has no OAuth2 token validation here, so tests with bearer tokens stay on Dovecot.
"""

from __future__ import annotations

import pytest

from tests.servers.cyrus_config import CYRUS_DEBIAN, CYRUS_UNIX_SEPARATOR, CyrusShape
from tests.servers.dovecot_shapes import DEBIAN_DEFAULT, SHAPES
from tests.servers.mail_server import FolderShape, MailServer

MATRIX: tuple[FolderShape, ...] = (*SHAPES, CYRUS_DEBIAN)
SERVERS: tuple[FolderShape, ...] = (DEBIAN_DEFAULT, CYRUS_DEBIAN)


def _across(shapes: tuple[FolderShape, ...]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("server_shape", shapes, indirect=True,
                                   ids=[shape.name for shape in shapes])


across_shapes = _across(MATRIX)
across_all_namespaces = _across((*MATRIX, CYRUS_UNIX_SEPARATOR))
across_servers = _across(SERVERS)
across_dovecot_shapes = _across(SHAPES)


@pytest.fixture
def server_shape(request: pytest.FixtureRequest) -> FolderShape:
    """The server and namespace of this run (Dovecot at Debian's defaults unless marked)."""
    shape: FolderShape = getattr(request, "param", DEBIAN_DEFAULT)
    return shape


@pytest.fixture
def mail_server(request: pytest.FixtureRequest, server_shape: FolderShape) -> MailServer:
    """The running server of ``server_shape``: the ``cyrus`` or the ``dovecot`` fixture."""
    name = "cyrus" if isinstance(server_shape, CyrusShape) else "dovecot"
    server: MailServer = request.getfixturevalue(name)
    return server
