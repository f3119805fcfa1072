"""What the store remembers for the source hop: checkpoints, and which messages are recorded.

A checkpoint row per mailbox and folder holds the IMAP cursor (UIDVALIDITY and the
last acknowledged UID) or Graph's delta link, when the folder was first watched (the
onboarding cut-off), the last poll, success and error, and a small JSON ``state`` for
the auth failure episode and daily upkeep marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.auth import AuthError, ReauthRequired
from ingest.sources.base import Cursor
from ingest.store.db import database_errors, read_session, transaction
from ingest.store.events import add_event
from ingest.store.models import Checkpoint, Message
from ingest.timeutil import utcnow

AUTH_EPISODE = "auth_failure"
_LOOKUP_CHUNK = 500
_ERROR_LIMIT = 2000


@dataclass(frozen=True)
class Position:
    """A checkpoint as the poller uses it."""

    cursor: Cursor
    first_watched_at: datetime
    state: dict[str, Any]


class Checkpoints:
    """The checkpoint of one mailbox folder; every method is its own short transaction."""

    def __init__(self, engine: Engine, mailbox: str, folder: str) -> None:
        self.engine = engine
        self.mailbox = mailbox
        self.folder = folder

    def _row(self, session: Session) -> Checkpoint | None:
        query = select(Checkpoint).where(Checkpoint.mailbox == self.mailbox,
                                         Checkpoint.folder == self.folder)
        return session.scalars(query).first()

    def peek(self) -> Position | None:
        """The stored position, or None when the folder was never watched."""
        with database_errors("reading a checkpoint"), read_session(self.engine) as session:
            row = self._row(session)
            return _position(row) if row else None

    def load(self) -> Position:
        """The stored position; the first call for a folder records ``first_watched_at``."""
        try:
            with database_errors("creating a checkpoint"), transaction(self.engine) as session:
                return _position(self._require(session))
        except IntegrityError:  # another process created it at the same moment
            position = self.peek()
            assert position is not None
            return position

    def advance(self, cursor: Cursor) -> None:
        """After a batch was acknowledged on the server: move the cursor, note the success."""
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            self.advance_in(session, cursor)

    def advance_in(self, session: Session, cursor: Cursor) -> None:
        """``advance`` inside the caller's transaction (a later batch's record)."""
        now = utcnow()
        # One UPDATE, not a load and a flush: it rides along with every batch's record.
        moved = (update(Checkpoint)
                 .where(Checkpoint.mailbox == self.mailbox, Checkpoint.folder == self.folder)
                 .values(uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid,
                         sync_token=cursor.token, last_poll_at=now, last_success_at=now,
                         last_error=None)
                 .execution_options(synchronize_session=False))
        if session.execute(moved).rowcount == 0:  # type: ignore[attr-defined]
            self._require(session)  # made by load(); gone only if someone deleted it
            session.execute(moved)

    def connected(self) -> None:
        """A login worked: the error and any auth failure episode are over."""
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            row = self._require(session)
            row.last_error = None
            if AUTH_EPISODE in row.state:
                row.state = {k: v for k, v in row.state.items() if k != AUTH_EPISODE}

    def failed(self, error: str) -> None:
        """A poll failed: keep the reason for ``ackmail stats``."""
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            row = self._require(session)
            row.last_poll_at = utcnow()
            row.last_error = error[:_ERROR_LIMIT]

    def auth_failed(self, error: AuthError) -> bool:
        """Record one ``auth.failed`` event per episode (until the next good login).

        Returns True when this call opened the episode (and wrote the event).
        """
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            row = self._require(session)
            row.last_poll_at = utcnow()
            row.last_error = str(error)[:_ERROR_LIMIT]
            if AUTH_EPISODE in row.state:
                return False
            command = error.command if isinstance(error, ReauthRequired) else None
            detail = {"mailbox": self.mailbox, "cause": error.cause, "fix": error.fix,
                      "command": command, "token": error.claims or None}
            row.state = {**row.state, AUTH_EPISODE: {"since": utcnow().isoformat(),
                                                     "cause": error.cause}}
            event = add_event(session, "auth.failed", detail=detail)
            event.mailbox = self.mailbox
            return True

    def heartbeat(self, *, idle: bool, reconnected: bool = False) -> None:
        """The connection is alive and about to wait for mail: what ``/healthz`` reads to
        tell a stuck IDLE (old heartbeat) from a quiet mailbox (fresh heartbeat, no mail)."""
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            row = self._require(session)
            reconnects = int(row.state.get("reconnects", 0)) + (1 if reconnected else 0)
            row.state = {**row.state, "idle": idle, "heartbeat_at": utcnow().isoformat(),
                         "reconnects": reconnects}

    def mark(self, key: str, when: datetime) -> None:
        """Remember when a periodic job last ran for this folder (in ``state``)."""
        with database_errors(f"updating the checkpoint of {self.mailbox}"), \
                transaction(self.engine) as session:
            row = self._require(session)
            row.state = {**row.state, key: when.isoformat()}

    def _require(self, session: Session) -> Checkpoint:
        row = self._row(session)
        if row is None:
            row = Checkpoint(mailbox=self.mailbox, folder=self.folder,
                             first_watched_at=utcnow(), state={})
            session.add(row)
            session.flush()
        return row


def _position(row: Checkpoint) -> Position:
    return Position(Cursor(row.uidvalidity, row.last_uid or 0, row.sync_token),
                    row.first_watched_at,
                    dict(row.state or {}))


def recorded_keys(engine: Engine, mailbox: str, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` (source keys) are recorded for ``mailbox``."""
    found: set[str] = set()
    with database_errors("looking up recorded messages"), read_session(engine) as session:
        for first in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = list(keys[first:first + _LOOKUP_CHUNK])
            found.update(session.scalars(select(Message.source_key).where(
                Message.mailbox == mailbox, Message.source_key.in_(chunk))))
    return found
