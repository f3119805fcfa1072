"""The leases a poller's keeper works with: the ``Book`` it asks, and the one for SQLite.

On PostgreSQL the book is ``ingest.store.leases.LeaseBook`` (rows shared by every
poller); a poller that runs alone (SQLite, a dry run) takes every folder from
``AllMailboxes`` without touching the database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from ingest.store.leases import Claimed, Key


class Book(Protocol):
    """The leases of one poller, as its keeper uses them."""

    @property
    def shared(self) -> bool:
        """Whether other pollers may share these folders (each then claims its share)."""

    def heartbeat(self) -> int:
        """Say this poller is alive; returns how many live pollers share its folders."""

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` free or expired leases."""

    def renew(self, held: Collection[Key]) -> set[Key]:
        """Extend the leases in ``held``; returns those still this poller's."""

    def release(self, keys: Collection[Key], why: str) -> None:
        """Hand leases back, free for any poller."""

    def holders(self) -> dict[Key, str]:
        """The live holder of each folder that has one."""

    def unregister(self) -> None:
        """Release every lease and forget this poller."""


class AllMailboxes:
    """Every folder, always: the book of a poller that runs alone (SQLite, a dry run)."""

    def __init__(self, keys: Sequence[Key]) -> None:
        self.keys = tuple(keys)
        self._held: set[Key] = set()

    @property
    def shared(self) -> bool:
        return False

    def heartbeat(self) -> int:
        return 1

    def claim(self, limit: int) -> list[Claimed]:
        free = [key for key in self.keys if key not in self._held][:max(0, limit)]
        self._held.update(free)
        return [Claimed(key) for key in free]

    def renew(self, held: Collection[Key]) -> set[Key]:
        return set(held)

    def release(self, keys: Collection[Key], why: str) -> None:
        self._held.difference_update(keys)

    def holders(self) -> dict[Key, str]:
        return {}

    def unregister(self) -> None:
        self._held.clear()
