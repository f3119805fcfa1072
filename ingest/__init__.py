"""ackmail ingest: mailbox -> stored decision (auth, sources, parsing, correlation, store, CLI)."""

__version__ = "0.1.0"
