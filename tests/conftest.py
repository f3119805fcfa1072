"""Shared fixtures. Fixtures that start real servers live in tests/servers/ and are
registered here as plugins, so every test module gets the same ones."""

pytest_plugins: list[str] = [
    "tests.servers.postgres_fixtures",
    "tests.servers.matrix_fixtures",
    "tests.servers.dovecot_fixtures",
    "tests.servers.cyrus_fixtures",
    "tests.servers.idp_fixtures",
    "tests.servers.graph_fixtures",
    "tests.servers.rules_fixtures",
    "tests.servers.fault_fixtures",
]
