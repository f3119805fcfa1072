"""The error tree every ackmail module raises from.

Three branches, because callers act on them differently:
- ``UserError``: the user (or a sender) must change something; record it, say how.
- ``TransientError``: the world may heal by itself; retry with backoff.
- ``PermanentError``: retrying will not help; quarantine or alert.

Library errors are translated into these at the module boundary, so no caller
ever needs to know that imaplib, MSAL or psycopg was involved.
"""


class AckmailError(Exception):
    """Root of every error ackmail raises on purpose; its message is user-facing."""


class UserError(AckmailError):
    """Something the user supplied is wrong; the message says what, where and the fix."""


class ConfigError(UserError):
    """The configuration file (or a secret it names) is invalid or missing."""


class TransientError(AckmailError):
    """A fault that may go away on its own (network, a busy server); safe to retry."""


class PermanentError(AckmailError):
    """A fault retrying will not fix (a server refusing us, a corrupt record)."""


class StoreError(PermanentError):
    """The database is unreachable, uninitialised, or at another schema revision."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached or answered with an error; the work is retried."""
