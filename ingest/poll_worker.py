"""One mailbox folder, one worker: fetch -> process_batch -> acknowledge -> checkpoint.

The order is the guarantee: a message is acknowledged on the server (moved, flagged,
deleted) only after ``process_batch`` has committed its record, and the cursor
moves only after the acknowledgement (``poll_drain`` overlaps these steps across
batches, never within one). A crash anywhere re-fetches at most the batches in hand,
which the pipeline recognises as duplicates. Network and server faults reconnect with
tenacity (exponential backoff, jitter, a cap); a sign-in that needs a person is
recorded once per episode and retried slowly; other mailboxes are not affected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

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
from ingest.pipeline import Arrival, PipelineConfig, Processed, process_batch
from ingest.pipeline.pool import InProcessPreparer, Preparer, Preparing
from ingest.poll_drain import Drain
from ingest.sources.base import SourceRef
from ingest.sources.checkpoints import Checkpoints
from ingest.sources.registry import SOURCES, make_source
from ingest.sources.source import (
    Batch,
    Cursor,
    Settled,
    Source,
    SourceContext,
    SourceFactory,
    SourceOptions,
)
from ingest.store.statistics import PlannerStatistics
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)
Report = Callable[[str, SourceRef, Processed], None]


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
class Tally:
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
        self.tally = Tally()
        self.cursor = Cursor()
        self.backlog_before: datetime | None = None
        self.sessions = 0
        self.filed_this_session = 0
        self._filed: Cursor | None = None  # filed, its checkpoint not written yet
        self._filed_lock = threading.Lock()

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
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential(multiplier=policy.initial_seconds, max=policy.cap_seconds)
            + wait_random(0, policy.jitter_seconds),
            stop=self._give_up,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        reconnect: bool = retrying(self._session)
        return reconnect

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
        except TransientError as exc:
            if time.monotonic() - healthy_since < self.options.retry.healthy_seconds:
                raise
            log.warning("%s (reconnecting)", exc)
            self._note_error(str(exc))
            return True
        return False

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
        """Process and acknowledge every new message, a fetched batch per transaction
        (``poll_drain`` overlaps the fetching, recording and filing of batches)."""
        drain = Drain(source, self.preparer, self._record, partial(self._settle, source), self.stop)
        fetched = drain.run(self.cursor)
        filed = self._take_filed()
        if filed is not None:
            self.checkpoints.advance(filed)
        elif not fetched and not self.options.dry_run:
            self.checkpoints.advance(self.cursor)  # nothing new: still a successful poll

    def _record(self, batch: Batch, preparing: Preparing) -> list[Settled]:
        items = batch.items
        arrivals = [Arrival(item.ref, item.raw, self.backlog_before) for item in items]
        # The checkpoint of the batch filed last rides along: a commit fewer per batch. An
        # empty batch writes nothing of its own; the end of the pass writes it then.
        filed = self._take_filed() if items else None
        also = None if filed is None else partial(self.checkpoints.advance_in, cursor=filed)
        try:
            results = process_batch(self.engine, self.pipeline, arrivals,
                                    dry_run=self.options.dry_run, preparing=preparing, also=also)
        except BaseException:
            self._put_filed(filed)
            raise
        for item, result in zip(items, results, strict=True):
            self.tally.count(result)
            if self.report is not None:
                self.report(self.name, item.ref, result)
        return [Settled(item.ref, result.filed_as)
                for item, result in zip(items, results, strict=True)]

    def _settle(self, source: Source, batch: Batch, settled: list[Settled]) -> None:
        """On the connection's thread: file the batch; its checkpoint is written with the
        next batch's record (or at the end of the pass)."""
        if not self.options.dry_run:
            source.acknowledge(settled)
            self._put_filed(batch.cursor)
            if self.statistics is not None:
                self.statistics.recorded(len(settled))
        self.cursor = batch.cursor
        self.filed_this_session += len(settled)

    def _put_filed(self, cursor: Cursor | None) -> None:
        """Note ``cursor`` as filed, to be written; an older one never replaces a newer."""
        with self._filed_lock:
            if cursor is not None and (self._filed is None or self._filed.uidvalidity
                                       != cursor.uidvalidity or self._filed.last_uid
                                       <= cursor.last_uid):
                self._filed = cursor

    def _take_filed(self) -> Cursor | None:
        with self._filed_lock:
            filed, self._filed = self._filed, None
            return filed

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
