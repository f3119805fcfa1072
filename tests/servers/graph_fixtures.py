"""Pytest fixtures for the Graph-shaped test server (tests/servers/graph.py).

``graph`` is a fresh server per test, trusting the test's identity provider (``idp``),
serving mailboxes from files under the test's directory, stopped when the test ends.
It presents the identity provider's loopback certificate, so one CA file trusts both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.servers.tls import TestPki


@pytest.fixture
def graph(idp: IdentityProvider, idp_pki: TestPki, tmp_path: Path) -> Iterator[GraphServer]:
    """A running Graph server on 127.0.0.1 (ephemeral port), stopped after the test."""
    with GraphServer(idp_pki, idp, tmp_path / "graph-mail") as server:
        yield server
