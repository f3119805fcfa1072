"""The lease keeper: a MailboxWorker thread for each mailbox folder this poller holds.

It is the poller's main loop. Every heartbeat (a third of the lease) it says the
poller is alive, renews the leases it holds, stops the worker of a lease it lost,
hands back the leases above its fair share (ceil(folders / live pollers), so a poller
that starts later gets its part) and claims free or expired ones up to that share. A
lease goes back only once its worker has finished the batch in hand and ended, so
two pollers never work one folder at once unless a lease was lost. With ``once`` it
claims what it can at the start, and each folder's lease goes back when it is drained.
Before its first claim a poller that shares its folders says it is alive and waits a
moment, so pollers started together count one another and each claims its share at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.errors import TransientError
from ingest.poller.book import Book
from ingest.poller.worker import MailboxWorker
from ingest.store.leases import Claimed, Key

log = logging.getLogger(__name__)
WorkerFactory = Callable[[Key, threading.Event], MailboxWorker]
_TICK_SECONDS = 0.5  # the main thread wakes this often, so signal handlers run promptly
# Pollers a service manager starts together register within this long of one another.
_SETTLE_SECONDS = 2.0


@dataclass
class _Run:
    """One worker on one lease; ``why`` is set once it was asked to stop."""

    key: Key
    thread: threading.Thread
    stop: threading.Event
    why: str | None = None


class Keeper:
    """Holds this poller's share of the folders, with a worker thread on each."""

    def __init__(self, book: Book, keys: Sequence[Key], make_worker: WorkerFactory, *,
                 lease_seconds: float, once: bool = False) -> None:
        self.book = book
        self.keys = tuple(keys)
        self.make_worker = make_worker
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / 3
        self.once = once
        self.running: dict[Key, _Run] = {}
        self.stopping: list[_Run] = []  # workers of lost leases, still finishing
        self.workers: dict[Key, list[MailboxWorker]] = {}  # every worker started, for the summary
        self.held_elsewhere: dict[Key, str] = {}
        self._halted = False
        self._claimed_once = False
        self._confirmed = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        """Keep leases and workers until ``stop`` (with ``once``: until all are drained)."""
        due = 0.0
        try:
            self._settle(stop)
            while not stop.is_set():
                self._reap()
                if time.monotonic() >= due:
                    due = time.monotonic() + self.interval
                    self._turn()
                if self.once and self._claimed_once and not self.running:
                    break
                self._pause(min(_TICK_SECONDS, self.interval))
        finally:
            self._shutdown()

    def _settle(self, stop: threading.Event) -> None:
        """Say this poller is alive, then wait for the others starting with it: counted
        alone, the first to start would claim every folder and hand half back a heartbeat
        later, after its workers had begun on them."""
        if self.once or not self.book.shared:
            return
        try:
            self.book.heartbeat()
        except TransientError:
            return  # the first turn retries and reports it
        until = time.monotonic() + min(self.interval, _SETTLE_SECONDS)
        while not stop.is_set() and (left := until - time.monotonic()) > 0:
            time.sleep(min(_TICK_SECONDS, left))

    def halt(self) -> None:
        """Ask every worker to finish the batches in hand; safe from a signal handler."""
        self._halted = True
        for run in [*self.running.values(), *self.stopping]:
            run.stop.set()

    def _pause(self, seconds: float) -> None:
        # Joining a worker (not waiting on an event a signal handler sets) wakes as soon as
        # a drained worker ends, and cannot deadlock with the handler.
        runs = list(self.running.values())
        if runs:
            runs[0].thread.join(seconds)
        else:
            time.sleep(seconds)

    def _turn(self) -> None:
        try:
            self._keep()
        except TransientError as exc:
            if self.once and not self._claimed_once:
                raise  # nothing claimed yet: the drain cannot start
            log.warning("%s", exc)
            self._presume_lost()

    def _keep(self) -> None:
        """Heartbeat, renew, stop the workers of lost leases, move towards the fair share."""
        share = self._share()
        kept = self.book.renew(set(self.running))
        self._confirmed = time.monotonic()
        for key in set(self.running) - kept:
            self._drop(self.running[key], "lost")
        self._balance(share)

    def _share(self) -> int:
        live = self.book.heartbeat()
        return len(self.keys) if self.once else math.ceil(len(self.keys) / live)

    def _presume_lost(self) -> None:
        """Leases not renewed for a whole lease period may have been taken: stop their work."""
        if time.monotonic() - self._confirmed < self.lease_seconds:
            return
        for run in list(self.running.values()):
            log.warning("mailbox '%s': its lease could not be renewed for %.0f s; its worker "
                        "stops, as another poller may have taken it over", run.key[0],
                        time.monotonic() - self._confirmed)
            self._drop(run, "unconfirmed")

    def _drop(self, run: _Run, why: str) -> None:
        run.why = why
        run.stop.set()
        del self.running[run.key]
        self.stopping.append(run)

    def _balance(self, share: int) -> None:
        active = sorted(key for key, run in self.running.items() if run.why is None)
        for key in active[share:]:
            run = self.running[key]
            run.why = f"fair share is {share} of {len(self.keys)}"
            run.stop.set()
        if self.once and self._claimed_once:
            return
        want = len(self.keys) if self.once else share - len(self.running)
        for claim in self.book.claim(want):
            self._start(claim)
        self._claimed_once = True

    def _start(self, claim: Claimed) -> None:
        stop = threading.Event()
        worker = self.make_worker(claim.key, stop)
        thread = threading.Thread(target=worker.run, name=f"poll-{worker.name}", daemon=True)
        self.running[claim.key] = _Run(claim.key, thread, stop)
        self.workers.setdefault(claim.key, []).append(worker)
        if self._halted:
            stop.set()
        thread.start()

    def _reap(self) -> None:
        """Hand back the leases whose worker has ended (drained, or stopped to give it up)."""
        ended = [run for run in self.running.values() if not run.thread.is_alive()]
        self.stopping = [run for run in self.stopping if run.thread.is_alive()]
        if not ended:
            return
        for run in ended:
            del self.running[run.key]
        reasons = {run.why or "drained" for run in ended}
        for why in sorted(reasons):
            self._release([run.key for run in ended if (run.why or "drained") == why], why)

    def _release(self, keys: list[Key], why: str) -> None:
        try:
            self.book.release(keys, why)
        except TransientError as exc:
            log.warning("%s (the leases expire by themselves)", exc)

    def _shutdown(self) -> None:
        self.halt()
        for run in [*self.running.values(), *self.stopping]:
            while run.thread.is_alive():
                run.thread.join(_TICK_SECONDS)
        self._release(list(self.running), "stopping")
        try:
            self.held_elsewhere = {key: holder for key, holder in self.book.holders().items()
                                   if key not in self.workers}
            self.book.unregister()
        except TransientError as exc:
            log.warning("%s (the leases expire by themselves)", exc)
