"""Leases: which poller polls which mailbox folder when several share one PostgreSQL database.

A ``leases`` row per mailbox folder names its holder and when the lease ends; a
``pollers`` row per long-running poller says it is alive. Every time compared here
is the database's clock (``now()``), never this machine's: pollers run on several
machines. A poller claims free or expired leases with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (two pollers claiming at once neither wait for nor take the same row), renews
the ones it holds in one UPDATE (what comes back is what it still holds), and releases
them when it stops or holds more than its fair share.

Exactly-once does not rest on the lease (the unique source identity of a message and
the request row lock hold whatever happens); the lease keeps two pollers from doing
the same work. On SQLite one poller runs at a time (``single_sqlite_poller``), so
``ingest.poller.book.AllMailboxes`` grants every folder without touching the database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ingest.store.db import database_errors, transaction
from ingest.store.models import Lease, PollerProcess

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (mailbox name, folder)


@dataclass(frozen=True)
class Claimed:
    """A lease just claimed; ``previous`` is the dead poller it was taken over from."""

    key: Key
    previous: str | None = None
    silent_seconds: float = 0.0


def holder_id() -> str:
    """``host:pid:8hex``: unique per poller, and says to ops where it runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def folders_digest(keys: Sequence[Key]) -> str:
    """The same text for pollers of the same folders, whatever their order."""
    text = "\n".join(f"{mailbox}\0{folder}" for mailbox, folder in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _transaction(engine: Engine, what: str) -> Iterator[Session]:
    with database_errors(what), transaction(engine) as session:
        yield session


class LeaseBook:
    """This poller's leases on PostgreSQL.

    ``register=False`` (``poll --once``) takes leases without counting as a poller that
    shares them: a passing drain must not make the services hand folders around.
    """

    def __init__(self, engine: Engine, keys: Sequence[Key], lease_seconds: float, *,
                 register: bool = True, holder: str | None = None) -> None:
        self.engine = engine
        self.keys = tuple(keys)
        self.lease = timedelta(seconds=lease_seconds)
        self.register = register
        self.holder = holder or holder_id()
        self.digest = folders_digest(self.keys)
        self._rows_ready = False

    @property
    def shared(self) -> bool:
        """A registered poller shares its folders with the others (``poll --once`` does not)."""
        return self.register

    def _ours(self, keys: Collection[Key] | None = None) -> ColumnElement[bool]:
        return tuple_(Lease.mailbox, Lease.folder).in_(list(self.keys if keys is None else keys))

    def heartbeat(self) -> int:
        """Renew this poller's row, forget dead ones, count the live pollers of these folders."""
        now = func.now()
        with _transaction(self.engine, "renewing this poller's heartbeat") as session:
            if not self._rows_ready:
                session.execute(insert(Lease).values(
                    [{"mailbox": m, "folder": f} for m, f in self.keys]).on_conflict_do_nothing())
            if self.register:
                beat = {"heartbeat_at": now, "expires_at": now + self.lease}
                session.execute(insert(PollerProcess).values(
                    holder=self.holder, host=socket.gethostname(), pid=os.getpid(),
                    mailboxes=self.digest, started_at=now, **beat,
                ).on_conflict_do_update(index_elements=[PollerProcess.holder], set_=beat))
            session.execute(delete(PollerProcess).where(PollerProcess.expires_at < now))
            live = session.scalar(select(func.count()).select_from(PollerProcess).where(
                PollerProcess.mailboxes == self.digest, PollerProcess.expires_at > now))
        self._rows_ready = True
        return max(1, live or 0)

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` leases that are free or whose holder stopped renewing."""
        if limit <= 0:
            return []
        now = func.now()
        query = (
            select(Lease.mailbox, Lease.folder, Lease.holder, Lease.heartbeat_at, now)
            .where(self._ours(), or_(Lease.holder.is_(None), Lease.expires_at < now))
            .order_by(Lease.mailbox, Lease.folder)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with _transaction(self.engine, "claiming mailbox leases") as session:
            rows = session.execute(query).all()
            if rows:
                session.execute(
                    update(Lease).where(self._ours([(r[0], r[1]) for r in rows]))
                    .values(holder=self.holder, acquired_at=now, heartbeat_at=now,
                            expires_at=now + self.lease)
                    .execution_options(synchronize_session=False))
        claims = [_claimed((mailbox, folder), previous, seen, clock, self.holder)
                  for mailbox, folder, previous, seen, clock in rows]
        for claim in claims:
            _log_claim(claim, self.holder)
        return claims

    def renew(self, held: Collection[Key]) -> set[Key]:
        """Extend the leases in ``held`` that are still this poller's; returns those."""
        if not held:
            return set()
        now = func.now()
        with _transaction(self.engine, "renewing mailbox leases") as session:
            rows = session.execute(
                update(Lease).where(Lease.holder == self.holder, self._ours(held))
                .values(heartbeat_at=now, expires_at=now + self.lease)
                .returning(Lease.mailbox, Lease.folder)
                .execution_options(synchronize_session=False)).all()
        kept = {(mailbox, folder) for mailbox, folder in rows}
        for mailbox, _folder in sorted(set(held) - kept):
            log.warning("mailbox '%s': lease lost to another poller; its worker stops after "
                        "the batch in hand", mailbox)
        return kept

    def release(self, keys: Collection[Key], why: str) -> None:
        """Hand ``keys`` back (only those still this poller's), free for any poller."""
        if not keys:
            return
        with _transaction(self.engine, "releasing mailbox leases") as session:
            self._free(session, self._ours(keys))
        for mailbox, _folder in sorted(keys):
            log.info("mailbox '%s': lease released by %s (%s)", mailbox, self.holder, why)

    def _free(self, session: Session, which: ColumnElement[bool]) -> None:
        session.execute(
            update(Lease).where(Lease.holder == self.holder, which)
            .values(holder=None, acquired_at=None, heartbeat_at=None, expires_at=None)
            .execution_options(synchronize_session=False))

    def holders(self) -> dict[Key, str]:
        """The live holder of each of these folders that has one (this poller included)."""
        with _transaction(self.engine, "reading mailbox leases") as session:
            rows = session.execute(
                select(Lease.mailbox, Lease.folder, Lease.holder)
                .where(self._ours(), Lease.holder.is_not(None), Lease.expires_at > func.now())
            ).all()
        return {(mailbox, folder): str(holder) for mailbox, folder, holder in rows}

    def unregister(self) -> None:
        """On stop: release every lease this poller holds and delete its row."""
        with _transaction(self.engine, "unregistering this poller") as session:
            self._free(session, Lease.holder.is_not(None))
            session.execute(delete(PollerProcess).where(PollerProcess.holder == self.holder))


def _claimed(key: Key, previous: str | None, seen: datetime | None, clock: datetime,
             holder: str) -> Claimed:
    if previous is None or previous == holder or seen is None:
        return Claimed(key)
    return Claimed(key, previous, (clock - seen).total_seconds())


def _log_claim(claim: Claimed, holder: str) -> None:
    mailbox = claim.key[0]
    if claim.previous:
        log.warning("mailbox '%s': lease taken over by %s from poller %s, silent for %.1f s",
                    mailbox, holder, claim.previous, claim.silent_seconds)
    else:
        log.info("mailbox '%s': lease claimed by %s", mailbox, holder)
