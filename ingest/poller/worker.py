"""One mailbox folder, one worker: sessions of connect -> passes over new mail -> wait.

Each pass is a ``FolderPass``, which holds the exactly-once order (record, then file
on the server, then checkpoint) and tells how far it got. Network and server faults
reconnect with tenacity (exponential backoff, jitter, a cap); a sign-in that needs a
person is recorded once per episode and retried slowly; other mailboxes are not affected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from ingest.auth import AuthError
from ingest.errors import AckmailError, TransientError
from ingest.pipeline import PipelineConfig, Processed
from ingest.pipeline.pool import InProcessPreparer, Preparer
from ingest.poller.folder_pass import BatchRecorder, FolderPass, Report
from ingest.sources.base import (
    Cursor,
    Source,
    SourceContext,
    SourceFactory,
    SourceOptions,
)
from ingest.sources.connect import ServerThrottled, SessionEnded, SessionTokenExpired
from ingest.sources.registry import SOURCES, make_source
from ingest.store.checkpoints import Checkpoints
from ingest.store.statistics import PlannerStatistics
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Reconnect backoff: exponential from ``initial``, plus jitter, capped at ``cap``."""

    initial_seconds: float = 1.0
    cap_seconds: float = 300.0
    jitter_seconds: float = 1.0
    # ``--once`` gives up on a mailbox after this many failed attempts in a row.
    once_attempts: int = 4
    # A session that ran this long before failing reconnects with a fresh backoff.
    healthy_seconds: float = 60.0
    # A sign-in that needs a person, or a settings error, is retried this slowly.
    slow_retry_seconds: float = 300.0
    # A server that asks for a pause (throttling) gets it, up to this long.
    throttle_cap_seconds: float = 900.0


@dataclass(frozen=True)
class PollOptions:
    """How a poll runs; the defaults are the long-running service."""

    once: bool = False
    dry_run: bool = False
    backlog_from: datetime | None = None
    mailboxes: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    source: SourceOptions = field(default_factory=SourceOptions)
    tick_seconds: float = 5.0


@dataclass
class MailboxTally:
    """What became of the messages of one mailbox during this run."""

    processed: int = 0
    ignored: int = 0
    quarantined: int = 0
    duplicates: int = 0
    error: str | None = None
    elapsed_seconds: float = 0.0

    def count(self, result: Processed) -> None:
        """Add one pipeline result (a status's value names its counter)."""
        name = "duplicates" if result.status is None else result.status.value
        setattr(self, name, getattr(self, name) + 1)


class MailboxWorker:
    """Polls one mailbox folder until ``stop`` is set (or, with ``once``, until drained)."""

    def __init__(self, context: SourceContext, engine: Engine, pipeline: PipelineConfig,
                 options: PollOptions, stop: threading.Event, *,
                 registry: Mapping[str, SourceFactory] = SOURCES,
                 report: Report | None = None, preparer: Preparer | None = None,
                 statistics: PlannerStatistics | None = None) -> None:
        self.context = context
        self.statistics = statistics
        self.preparer = preparer or InProcessPreparer(pipeline)
        self.mailbox = context.mailbox
        self.engine = engine
        self.pipeline = pipeline
        self.options = options
        self.stop = stop
        self.registry = registry
        self.report = report
        self.folder = make_source(context, self.registry).folder
        self.checkpoints = Checkpoints(engine, self.mailbox.name, self.folder)
        self.tally = MailboxTally()
        self.cursor = Cursor()
        self.backlog_before: datetime | None = None
        self.sessions = 0
        self.filed_this_session = 0
        self._pending: Cursor | None = None  # filed, its checkpoint not written yet
        self._last_bye: float | None = None  # when the server last ended a session itself

    @property
    def name(self) -> str:
        return self.mailbox.name

    def run(self) -> None:
        """The thread's body: sessions until stop; never raises."""
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                pause = self._run_sessions()
                if pause is None or self.options.once or self.stop.wait(pause):
                    break
        finally:
            self.tally.elapsed_seconds = time.monotonic() - started

    def _run_sessions(self) -> float | None:
        """Sessions with backoff; None when done, else seconds to wait before trying again."""
        try:
            while self._with_backoff():
                log.info("mailbox '%s': reconnecting after a healthy session ended", self.name)
            return None
        except AuthError as exc:
            self._auth_failed(exc)
        except AckmailError as exc:
            self._failed(str(exc))
        except Exception as exc:  # a bug must not end polling of this mailbox for good
            log.exception("mailbox '%s': unexpected error", self.name)
            self._failed(f"mailbox '{self.name}': unexpected error ({type(exc).__name__}: "
                         f"{exc}); the log has the details, polling goes on")
        return self.options.retry.slow_retry_seconds

    def _with_backoff(self) -> bool:
        policy = self.options.retry
        backoff = (wait_exponential(multiplier=policy.initial_seconds, max=policy.cap_seconds)
                   + wait_random(0, policy.jitter_seconds))
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=lambda state: self._pause_for(state, backoff),
            stop=self._give_up,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        reconnect: bool = retrying(self._session)
        return reconnect

    def _pause_for(self, state: RetryCallState, backoff: Callable[[RetryCallState], float]
                   ) -> float:
        """The server's own suggested pause when it throttles (capped), else the backoff."""
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, ServerThrottled):
            return backoff(state)
        pause = min(error.wait_seconds, self.options.retry.throttle_cap_seconds)
        log.warning("mailbox '%s': throttled by the server, which suggests waiting %.1f s; "
                    "waiting %.1f s (at most %.0f s)", self.name, error.wait_seconds,
                    pause, self.options.retry.throttle_cap_seconds)
        return pause

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a shutdown cuts the backoff short

    def _give_up(self, state: RetryCallState) -> bool:
        return self.stop.is_set() or (
            self.options.once and state.attempt_number >= self.options.retry.once_attempts)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        # ackmail's errors name the mailbox themselves.
        log.warning("%s (retrying in %.1f s, attempt %d)", error, pause, state.attempt_number)
        if error is not None and not self.options.dry_run:
            self._note_error(str(error))

    def _session(self) -> bool:
        """Connect, drain, then wait and drain until stop. True: reconnect with a fresh
        backoff (a connection that had been healthy for a while, or had filed mail, broke)."""
        if self.stop.is_set():
            return False
        source = make_source(self.context, self.registry)
        self.filed_this_session = 0
        try:
            self._connect_and_load_position(source)
            self.sessions += 1
            if not self.options.dry_run:
                self.checkpoints.connected()
            self.tally.error = None
            self._drain(source)
            return self._follow(source)
        except TransientError as exc:
            self._forget_expired_token(exc)
            # A link that breaks every few minutes but files mail in between is working:
            # growing the backoff would only leave mail waiting longer.
            if not self.filed_this_session:
                raise
            log.warning("%s (reconnecting at once: this session filed %d messages)",
                        exc, self.filed_this_session)
            self._note_error(str(exc))
            return True
        finally:
            source.close()

    def _connect_and_load_position(self, source: Source) -> None:
        """The server's greeting, TLS and login, and the database's first connection and
        the checkpoint, side by side: each is a tenth of a second before the first fetch."""
        with ThreadPoolExecutor(1, thread_name_prefix="mail-connect") as opener:
            connecting = opener.submit(source.connect)
            # Should the database fail, its error is the one raised; the connection is closed
            # by the caller once the attempt has ended.
            self._load_position()
            connecting.result()

    def _follow(self, source: Source) -> bool:
        healthy_since = time.monotonic()
        try:
            reconnected = self.sessions > 1
            while not (self.options.once or self.stop.is_set()):
                self.checkpoints.heartbeat(idle=self._idles, reconnected=reconnected)
                reconnected = False
                source.wait(self.stop)
                if self.stop.is_set():
                    break
                self._drain(source)
        except SessionEnded as exc:
            if self._ended_recently():
                raise
            # A server ends idle or expired sessions itself: reconnecting is routine.
            self._forget_expired_token(exc)
            log.info("%s", exc)
            return True
        except TransientError as exc:
            if time.monotonic() - healthy_since < self.options.retry.healthy_seconds:
                raise
            log.warning("%s (reconnecting)", exc)
            self._note_error(str(exc))
            return True
        return False

    def _ended_recently(self) -> bool:
        """Whether the server's previous BYE came less than ``healthy_seconds`` ago (then
        this one goes through the backoff, so a server that always says BYE is not hammered)."""
        now, previous = time.monotonic(), self._last_bye
        self._last_bye = now
        return previous is not None and now - previous < self.options.retry.healthy_seconds

    def _forget_expired_token(self, exc: TransientError) -> None:
        if isinstance(exc, SessionTokenExpired):
            self.context.providers.for_subject(self.mailbox).invalidate()

    @property
    def _idles(self) -> bool:
        """Whether this folder waits in IDLE (else it polls every poll_interval)."""
        return self.mailbox.protocol == "imap" and self.mailbox.idle

    def _load_position(self) -> None:
        if self.backlog_before is not None:
            return
        if self.options.dry_run:
            position = self.checkpoints.peek()
            watched = position.first_watched_at if position else utcnow()
            self.cursor = position.cursor if position else Cursor()
        else:
            position = self.checkpoints.load()
            watched, self.cursor = position.first_watched_at, position.cursor
        # INTERNALDATE has whole seconds: mail that arrives in the second the folder was first
        # watched must not count as old mail.
        self.backlog_before = self.options.backlog_from or watched.replace(microsecond=0)

    def _drain(self, source: Source) -> None:
        """Record, file and checkpoint every new message (``folder_pass`` keeps the order)."""
        recorder = BatchRecorder(self.engine, self.pipeline, self.checkpoints,
                                 backlog_before=self.backlog_before,
                                 dry_run=self.options.dry_run, count=self.tally.count,
                                 report=self.report)
        folder_pass = FolderPass(source, recorder, self.preparer, self.checkpoints, self.stop,
                                 dry_run=self.options.dry_run, statistics=self.statistics,
                                 pending=self._pending)
        try:
            folder_pass.run(self.cursor)
        finally:
            self.cursor = folder_pass.cursor
            self.filed_this_session += folder_pass.filed
            self._pending = folder_pass.pending

    def _note_error(self, text: str) -> None:
        try:
            self.checkpoints.failed(text)
        except TransientError:
            log.warning("mailbox '%s': could not record the error: the database is down",
                        self.name)

    def _failed(self, text: str) -> None:
        self.tally.error = text
        log.error("%s", text)
        if not self.options.dry_run:
            self._note_error(text)

    def _auth_failed(self, exc: AuthError) -> None:
        self.tally.error = str(exc)
        if self.options.dry_run:
            log.error("%s", exc)
            return
        try:
            first = self.checkpoints.auth_failed(exc)
        except TransientError:
            first = False
        log.log(logging.ERROR if first else logging.WARNING, "%s", exc)
