"""The poller's periodic jobs: background tasks every tick, raw-byte pruning every hour,
and once a day per OAuth mailbox, keeping a delegated grant alive and warning before
sign-ins or client secrets lapse.

A job that fails is logged and tried again at its next turn; it never stops polling.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from ingest.auth import TokenProviders, auth_status
from ingest.config import MailboxConfig, Settings
from ingest.errors import AckmailError, TransientError
from ingest.store.checkpoints import Checkpoints
from ingest.store.db import database_errors, transaction
from ingest.store.events import add_event, prune_raw
from ingest.timeutil import parse_duration, utcnow

log = logging.getLogger(__name__)
Task = Callable[[], object]

PRUNE_EVERY = timedelta(hours=1)
AUTH_EVERY = timedelta(days=1)
AUTH_RETRY = timedelta(hours=1)
AUTH_CHECKED = "auth_checked_at"
OAUTH_KINDS = ("oauth2-delegated", "oauth2-app")


@dataclass(frozen=True)
class Watched:
    """A polled mailbox and its checkpoint (where the daily marks are kept)."""

    mailbox: MailboxConfig
    checkpoints: Checkpoints


class Upkeep:
    """Runs the periodic jobs; ``tick`` does whatever is due."""

    def __init__(self, settings: Settings, engine: Engine, providers: TokenProviders,
                 watched: Sequence[Watched], background: Sequence[Task] = ()) -> None:
        self.settings = settings
        self.engine = engine
        self.providers = providers
        self.watched = [w for w in watched if w.mailbox.auth in OAUTH_KINDS
                        and w.mailbox.protocol != "maildir"]
        self.background = tuple(background)
        self._prune_due: datetime | None = None
        self._auth_due: dict[str, datetime] = {}

    def run(self, stop: threading.Event, every: float) -> None:
        """Tick every ``every`` seconds until ``stop``."""
        while not stop.wait(every):
            self.tick()

    def tick(self) -> None:
        """Run the background tasks, then the hourly and daily jobs that are due."""
        for task in self.background:
            _guarded(getattr(task, "__name__", repr(task)), task)
        now = utcnow()
        if self._prune_due is None or now >= self._prune_due:
            self._prune_due = now + PRUNE_EVERY
            _guarded("pruning raw messages", self.prune)
        for watched in self.watched:
            if now >= self._auth_due.setdefault(watched.mailbox.name,
                                                     self._first_due(watched, now)):
                _guarded(f"auth upkeep of '{watched.mailbox.name}'",
                         functools.partial(self.auth_upkeep, watched))

    def prune(self) -> int:
        """Forget raw bytes older than ``keep_raw``; returns how many were dropped."""
        cutoff = utcnow() - parse_duration(self.settings.keep_raw)
        with transaction(self.engine) as session:
            dropped = prune_raw(session, cutoff)
        if dropped:
            log.info("pruned the raw bytes of %d messages older than %s", dropped, cutoff)
        return dropped

    def _first_due(self, watched: Watched, now: datetime) -> datetime:
        # ``now`` is the tick's own moment: a later clock reading would put a never-checked
        # mailbox just after it, and a ``--once`` run (one tick) would skip it.
        position = watched.checkpoints.peek()
        last = position.state.get(AUTH_CHECKED) if position else None
        return datetime.fromisoformat(last) + AUTH_EVERY if last else now

    def auth_upkeep(self, watched: Watched) -> None:
        """Refresh an idle delegated grant; record ``auth.expiring`` when warnings stand."""
        box = watched.mailbox
        now = utcnow()
        self._auth_due[box.name] = now + AUTH_RETRY  # if anything below fails
        # Entra ends a refresh token after 90 idle days; only a grant idle this long is refreshed.
        idle = timedelta(days=self.settings.refresh_idle_days)
        self.providers.for_subject(box).refresh_if_idle(idle)
        status = auth_status(box, state_dir=self.settings.state_dir,
                             cache_key=self.settings.security.cache_key)
        if status.warnings:
            with transaction(self.engine) as session:
                event = add_event(session, "auth.expiring",
                                  detail={"mailbox": box.name, "warnings": list(status.warnings)})
                event.mailbox = box.name
            log.warning("mailbox '%s': %s", box.name, "; ".join(status.warnings))
        watched.checkpoints.mark(AUTH_CHECKED, now)
        self._auth_due[box.name] = now + AUTH_EVERY


def _guarded(what: str, job: Callable[[], object]) -> None:
    try:
        with database_errors(what):
            job()
    except TransientError as exc:
        log.warning("%s failed, will retry: %s", what, exc)
    except AckmailError as exc:
        log.error("%s failed: %s", what, exc)
    except Exception:  # a periodic job must never end the poller
        log.exception("%s failed", what)
