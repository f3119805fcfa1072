"""/healthz: is the database reachable, and is every watched mailbox folder being read?

A folder in IDLE may go hours without mail; what proves it alive is the poller's
heartbeat (``checkpoints.state.heartbeat_at``, written at each IDLE renewal or NOOP).
So an IDLE folder is judged by its heartbeat (fresh: quiet, stale: stuck) and a
polled folder by its last successful poll.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from ingest.config import Settings
from ingest.errors import DatabaseUnavailable, StoreError
from ingest.sources.base import SourceOptions
from ingest.store.db import ping, read_session
from ingest.store.models import Checkpoint
from ingest.timeutil import as_utc, isoformat_z, utcnow

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 60
NO_POLLER_YET = "no poller has read this folder yet: start ackmail poll"


class FolderState(enum.StrEnum):
    """What a folder's checkpoint says about the poller reading it."""

    POLLING = "polling"  # polled, and the last poll succeeded recently
    IDLE = "idle"  # in IDLE with a fresh heartbeat, and mail was read recently
    QUIET = "quiet"  # in IDLE with a fresh heartbeat, no mail for a while: fine
    STALE = "stale"  # polled, but no successful poll for too long
    STUCK = "stuck"  # in IDLE, but the heartbeat is old or missing: the connection hangs
    NEVER = "never"  # configured, never read successfully


HEALTHY_STATES = frozenset({FolderState.POLLING, FolderState.IDLE, FolderState.QUIET})


@dataclass(frozen=True)
class HealthPolicy:
    """How old a heartbeat or a poll may be before the folder counts as unhealthy."""

    # Two IDLE renewals missed in a row: one late renewal is not yet an outage.
    idle_stuck_after: timedelta = timedelta(seconds=2 * SourceOptions().idle_renew_seconds)
    polls_missed: int = 3
    poll_grace: timedelta = timedelta(seconds=60)

    def poll_stale_after(self, interval_seconds: int) -> timedelta:
        return timedelta(seconds=self.polls_missed * interval_seconds) + self.poll_grace


@dataclass(frozen=True)
class FolderHealth:
    """One mailbox folder as /healthz and the mailboxes page show it."""

    mailbox: str
    folder: str
    configured: bool
    idle: bool
    state: FolderState
    last_success_at: datetime | None = None
    heartbeat_at: datetime | None = None
    reconnects: int = 0
    last_error: str | None = None
    # Why an unhealthy folder is so, in words: above all, whether any poller still runs.
    note: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY_STATES

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The public form: no error text, which may name hosts and accounts."""
        return {
            "mailbox": self.mailbox,
            "folder": self.folder,
            "configured": self.configured,
            "mode": "idle" if self.idle else "poll",
            "state": self.state.value,
            "healthy": self.healthy,
            "last_success_at": isoformat_z(self.last_success_at),
            "last_success_age_seconds": _age(self.last_success_at, now),
            "heartbeat_at": isoformat_z(self.heartbeat_at),
            "heartbeat_age_seconds": _age(self.heartbeat_at, now),
            "reconnects": self.reconnects,
            "note": self.note,
        }


@dataclass(frozen=True)
class HealthReport:
    """The database's reachability and every folder's state at one moment."""

    checked_at: datetime
    database_reachable: bool
    folders: tuple[FolderHealth, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """Unhealthy when the database is down or any configured folder is not being read."""
        return self.database_reachable and all(
            folder.healthy for folder in self.folders if folder.configured
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "checked_at": isoformat_z(self.checked_at),
            "database": {"reachable": self.database_reachable},
            "mailboxes": [folder.as_json(self.checked_at) for folder in self.folders],
        }


def _age(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, round((now - moment).total_seconds()))


def check_health(
    settings: Settings,
    engine: Engine,
    *,
    policy: HealthPolicy | None = None,
    now: datetime | None = None,
) -> HealthReport:
    """Ping the database and judge every checkpoint (and every configured, unread mailbox)."""
    moment = now or utcnow()
    try:
        ping(engine)
        with read_session(engine) as session:
            checkpoints = list(
                session.scalars(select(Checkpoint).order_by(Checkpoint.mailbox, Checkpoint.folder))
            )
    except (StoreError, DatabaseUnavailable, DBAPIError) as exc:
        log.warning("health check: %s", exc)
        return HealthReport(moment, database_reachable=False)
    judge = _Judge(settings, policy or HealthPolicy(), moment)
    folders = [judge.folder(row) for row in checkpoints]
    seen = {row.mailbox for row in checkpoints}
    folders += [
        FolderHealth(box.name, box.folder, True, box.idle, FolderState.NEVER, note=NO_POLLER_YET)
        for box in settings.mailboxes
        if box.name not in seen
    ]
    return HealthReport(moment, True, tuple(folders))


class _Judge:
    """Turns a checkpoint row into a FolderHealth under one policy and one 'now'."""

    def __init__(self, settings: Settings, policy: HealthPolicy, now: datetime) -> None:
        self.intervals = {box.name: box.poll_interval_seconds for box in settings.mailboxes}
        self.policy = policy
        self.now = now

    def folder(self, row: Checkpoint) -> FolderHealth:
        state = row.state or {}
        idle = state.get("idle") is True
        heartbeat = _timestamp(state.get("heartbeat_at"))
        judged = self._state(row.mailbox, idle, row.last_success_at, heartbeat)
        return FolderHealth(
            mailbox=row.mailbox,
            folder=row.folder,
            configured=row.mailbox in self.intervals,
            idle=idle,
            state=judged,
            last_success_at=row.last_success_at,
            heartbeat_at=heartbeat,
            reconnects=_count(state.get("reconnects")),
            last_error=row.last_error,
            note=self._note(judged, row.mailbox, _latest(row.last_poll_at, heartbeat)),
        )

    def _note(self, state: FolderState, mailbox: str, last_sign: datetime | None) -> str:
        """Why the folder is unhealthy: no poller runs (no sign of one lately), or polls fail.

        A poller that runs leaves a sign at every attempt, failed or not (``last_poll_at``)
        and at every IDLE renewal (the heartbeat); none for several intervals means none runs.
        """
        if state in HEALTHY_STATES:
            return ""
        interval = self.intervals.get(mailbox, DEFAULT_POLL_INTERVAL)
        if last_sign is None:
            return NO_POLLER_YET
        if self.now - last_sign > self.policy.poll_stale_after(interval):
            return (f"no poller is running: nothing has tried this folder since "
                    f"{isoformat_z(last_sign)}; start ackmail poll")
        if state is FolderState.STUCK:
            return "the poller runs, but its IDLE connection is silent: see the last error"
        return "the poller runs, but its polls fail: see the last error"

    def _state(
        self, mailbox: str, idle: bool, success: datetime | None, heartbeat: datetime | None
    ) -> FolderState:
        interval = self.intervals.get(mailbox, DEFAULT_POLL_INTERVAL)
        polled_recently = (
            success is not None and self.now - success <= self.policy.poll_stale_after(interval)
        )
        if idle:
            if heartbeat is None or self.now - heartbeat > self.policy.idle_stuck_after:
                return FolderState.STUCK
            return FolderState.IDLE if polled_recently else FolderState.QUIET
        if success is None:
            return FolderState.NEVER
        return FolderState.POLLING if polled_recently else FolderState.STALE


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _timestamp(value: Any) -> datetime | None:
    """An ISO time the poller wrote; anything unreadable counts as no heartbeat."""
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
