"""Many mailboxes, a large backlog, several ``ackmail poll`` processes on PostgreSQL, in one run.

    .venv/bin/python -m tests.benchmarks.bench_load [--mailboxes 20] [--messages 50000]
        [--workers 2] [--lease-seconds 10] [--baseline-share 0.1] [--parse-workers 2]
        [--workload mix|matched:R] [--pollers 1,2,4]

Needs what the test suite needs: root, Dovecot, and PostgreSQL at $ACKMAIL_TEST_POSTGRES_URL.
Each mailbox is a folder of bob's (``in01`` filed into ``done01``...) and its own [[mailbox]]
in one ackmail.toml; each poller is the real CLI (``ackmail poll --no-dispatch``) in its own
process group with its parse processes. A fifth of the messages are replies that decide a
request. It prints: the baseline (ONE poller drains ``--baseline-share`` of the messages);
the load (``--workers`` pollers started together on the rest, delivered before they start)
and its ratio to the baseline rate; fairness (each mailbox's last record, each poller's
leases and records); peak memory (VmHWM) of each poller and its parse processes; and the
takeover (one poller SIGKILLed, one message into each folder it held: seconds from the kill
until the others recorded them, next to ``lease_seconds``). Rates count from the pollers'
start (start-up, logins and lease claims included) to the last record.

With ``--pollers 1,2,4`` it runs the scaling phases instead: for each count, a fresh
backlog of ``--messages`` (``--workload``, e.g. ``matched:2000``: every message answers
one of 2,000 requests) drained by that many pollers started together; each phase's rate,
its ratio to the first phase's, the fairness and the leases handed back to even out the
shares (none, when every poller claimed its share from the first round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from ingest.store.db import make_engine, read_session
from ingest.store.models import Lease, Message, Request, RequestStatus
from ingest.timeutil import utcnow
from tests.benchmarks.backlog import Databases, Workload, backlog, peak_rss_kb
from tests.servers.ackmail_config import config_env, write_config
from tests.servers.ackmail_process import AckmailProcess, AckmailProcesses
from tests.servers.dovecot import DovecotServer, TokenTrust, live_group_members
from tests.servers.dovecot_fixtures import generate_signing_key
from tests.sources.mail import unrelated

# The pipeline's line per message, once its record committed (or found it a duplicate).
RECORD_LINE = re.compile(r"ingest\.pipeline: message (\w+) mailbox=(\S+)")
STALL_SECONDS = 120.0  # no new record for this long: a poller is stuck, so the run ends


@dataclass(frozen=True)
class Bench:
    """What every phase uses: the mail server, the database, the installation's env."""

    server: DovecotServer
    engine: Engine
    env: dict[str, str]
    processes: AckmailProcesses
    folders: list[str]

    def deliver(self, messages: list[bytes]) -> None:
        """Spread ``messages`` over every folder, round robin, as maildir files (fast)."""
        bob = self.server.users.bob.address
        for n, folder in enumerate(self.folders):
            self.server.deliver_many(bob, messages[n::len(self.folders)], folder)

    def start(self, count: int) -> list[AckmailProcess]:
        """``count`` long-running ``ackmail poll`` processes, started together."""
        return [self.processes.start("poll", "--no-dispatch", env=self.env)
                for _ in range(count)]

    def recorded(self) -> int:
        """How many messages the database holds."""
        with read_session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Message)) or 0)

    def wait_for(self, target: int, pollers: list[AckmailProcess]) -> None:
        """Until the database holds ``target`` messages; ends the run if a poller dies or
        nothing is recorded for STALL_SECONDS."""
        seen, progress = -1, time.monotonic()
        while (count := self.recorded()) < target:
            if count != seen:
                seen, progress = count, time.monotonic()
            if any(not p.alive for p in pollers) or time.monotonic() - progress > STALL_SECONDS:
                raise SystemExit(f"a poller died or stalled at {count} of {target} messages; "
                                 f"their output:\n{self.processes.logs()[-4000:]}")
            time.sleep(0.1)


@dataclass(frozen=True)
class Drain:
    """One measured phase: its pollers, messages, seconds, and when it started."""

    pollers: list[AckmailProcess]
    messages: int
    seconds: float
    started_at: datetime

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def drain(bench: Bench, workers: int, messages: int) -> Drain:
    """Start ``workers`` pollers on a backlog of ``messages`` and wait until all are recorded."""
    target = bench.recorded() + messages
    started_at, started = utcnow(), time.monotonic()
    pollers = bench.start(workers)
    bench.wait_for(target, pollers)
    return Drain(pollers, messages, time.monotonic() - started, started_at)


def install(root: Path, server: DovecotServer, db_url: str, folders: list[str],
            args: argparse.Namespace) -> dict[str, str]:
    """Write ackmail.toml (one [[mailbox]] per folder) and return the pollers' environment."""
    bob = server.users.bob
    assert bob.password is not None
    common = {"protocol": "imap", "host": server.host, "port": server.imaps_port,
              "security": "ssl", "ca_file": str(server.pki.ca_pem), "username": bob.address,
              "poll_interval": 1}
    tables = []
    for folder in folders:
        values = {"name": folder, "folder": folder,
                  "processed_folder": folder.replace("in", "done")} | common
        lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        tables.append("\n".join(["[[mailbox]]", *lines, 'password = { env = "BOB_PASSWORD" }']))
    service = {"lease_seconds": args.lease_seconds, "parse_workers": args.parse_workers}
    config = write_config(root, service, "\n" + "\n\n".join(tables) + "\n")
    return {**config_env(config, db_url), "BOB_PASSWORD": bob.password.reveal()}


# --- what the database and /proc say


def folders_held(engine: Engine) -> dict[int, list[str]]:
    """The folders whose lease each poller (by pid; holders are ``host:pid:hex``) holds."""
    with read_session(engine) as session:
        rows = session.execute(select(Lease.folder, Lease.holder)
                               .where(Lease.holder.is_not(None))).all()
    held: dict[int, list[str]] = {}
    for folder, holder in rows:
        held.setdefault(int(str(holder).split(":")[1]), []).append(folder)
    return held


def last_records(engine: Engine, since: datetime) -> dict[str, float]:
    """Seconds from ``since`` to each mailbox's last record after it."""
    with read_session(engine) as session:
        rows = session.execute(select(Message.mailbox, func.max(Message.recorded_at))
                               .where(Message.recorded_at >= since)
                               .group_by(Message.mailbox)).all()
    return {mailbox: (last - since).total_seconds() for mailbox, last in rows}


def decided(engine: Engine) -> tuple[int, int]:
    """Requests decided, and all requests."""
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Request)) or 0
        done = session.scalar(select(func.count()).select_from(Request)
                              .where(Request.status != RequestStatus.PENDING)) or 0
    return done, total


def records_logged(poller: AckmailProcess) -> tuple[int, int, set[str]]:
    """From a poller's log: the messages it recorded, the duplicates it met, and the
    mailboxes it recorded from."""
    lines = RECORD_LINE.findall(poller.output())
    duplicates = sum(result == "duplicate" for result, _ in lines)
    return len(lines) - duplicates, duplicates, {mailbox for _, mailbox in lines}


def stop(poller: AckmailProcess) -> None:
    """SIGTERM, as a service manager stops it; ends the run if it did not exit cleanly."""
    finished = poller.stop()
    if finished.code != 0:
        raise SystemExit(finished.describe())


def stop_all(processes: AckmailProcesses) -> None:
    """SIGTERM each poller still running (an error ended the run), SIGKILL after a timeout."""
    for poller in processes.started:
        if poller.alive:
            with contextlib.suppress(AssertionError):  # it did not stop in time: it was killed
                poller.stop()
    processes.close()


# --- the phases' reports


def report_memory(name: str, poller: AckmailProcess) -> None:
    """VmHWM of the poller's own process, and of each other process in its group (parsers)."""
    parsers = [peak_rss_kb(pid) / 1024 for pid in live_group_members(poller.pid)
               if pid != poller.pid]
    print(f"  peak RSS {name} (pid {poller.pid}): {peak_rss_kb(poller.pid) / 1024:.1f} MiB; "
          f"{len(parsers)} parse processes: {', '.join(f'{m:.0f}' for m in parsers)} MiB")


def report_fairness(bench: Bench, load: Drain) -> dict[int, list[str]]:
    """When each mailbox was done; what each poller held and recorded. Returns the leases."""
    last = last_records(bench.engine, load.started_at)
    lasts = sorted(last.values())
    print(f"  last record per mailbox ({len(lasts)}): min {lasts[0]:.1f} s, "
          f"median {statistics.median(lasts):.1f} s, max {lasts[-1]:.1f} s, "
          f"max/min {lasts[-1] / lasts[0]:.2f}")
    held = folders_held(bench.engine)
    for n, poller in enumerate(load.pollers, 1):
        recorded, duplicates, mailboxes = records_logged(poller)
        own = held.get(poller.pid, [])  # a mailbox's name is its folder's
        done = max((last.get(folder, 0.0) for folder in own), default=0.0)
        print(f"  worker {n} (pid {poller.pid}): {len(own)} leases at the end (their last "
              f"record at {done:.1f} s); recorded {recorded} messages from {len(mailboxes)} "
              f"mailboxes, met {duplicates} duplicates")
    return held


def takeover(bench: Bench, load: Drain, held: dict[int, list[str]], lease: int) -> None:
    """SIGKILL the first poller, mail each folder it held, time until the others record it."""
    victim, survivors = load.pollers[0], load.pollers[1:]
    folders = held.get(victim.pid, [])
    target = bench.recorded() + len(folders)
    victim.kill()
    killed = time.monotonic()
    for folder in folders:
        bench.server.deliver(bench.server.users.bob.address, unrelated("takeover "), folder)
    bench.wait_for(target, survivors)
    print(f"takeover: worker 1 SIGKILLed; its {len(folders)} mailboxes' new messages were "
          f"recorded {time.monotonic() - killed:.1f} s after the kill (lease_seconds {lease})")


def run(bench: Bench, args: argparse.Namespace) -> None:
    """The baseline, the load with its fairness and memory, then the takeover."""
    base_count = round(args.messages * args.baseline_share)
    started = time.monotonic()
    messages = shuffled_backlog(bench, args.messages, args.workload)
    bench.deliver(messages[:base_count])
    print(f"setup: {args.messages} messages ({args.workload.name}) and their requests made "
          f"in {time.monotonic() - started:.1f} s")

    baseline = drain(bench, 1, base_count)
    print(f"baseline: 1 poller   {baseline.messages:6d} msgs {baseline.seconds:7.1f} s "
          f"{baseline.rate:7.0f} msg/s")
    report_memory("baseline poller", baseline.pollers[0])
    stop(baseline.pollers[0])

    bench.deliver(messages[base_count:])
    load = drain(bench, args.workers, args.messages - base_count)
    print(f"load:     {args.workers} pollers  {load.messages:6d} msgs {load.seconds:7.1f} s "
          f"{load.rate:7.0f} msg/s  = {load.rate / baseline.rate:.2f} x the baseline rate")
    for n, poller in enumerate(load.pollers, 1):
        report_memory(f"worker {n}", poller)
    held = report_fairness(bench, load)
    done, total = decided(bench.engine)
    print(f"  requests decided: {done} of {total}; messages recorded: {bench.recorded()}")
    takeover(bench, load, held, args.lease_seconds)
    for poller in load.pollers[1:]:
        stop(poller)


def shuffled_backlog(bench: Bench, count: int, workload: Workload) -> list[bytes]:
    """``count`` messages of ``workload`` (its requests registered), in a random order."""
    messages = backlog(bench.env["ACKMAIL_DATABASE_URL"], count, workload)
    random.Random(8).shuffle(messages)
    return messages


def scale(bench: Bench, counts: list[int], args: argparse.Namespace) -> None:
    """For each count, that many pollers started together on a fresh backlog."""
    rates: list[float] = []
    for count in counts:
        bench.deliver(shuffled_backlog(bench, args.messages, args.workload))
        phase = drain(bench, count, args.messages)
        rates.append(phase.rate)
        print(f"{count} poller(s): {phase.messages:6d} msgs {phase.seconds:7.1f} s "
              f"{phase.rate:7.0f} msg/s = {phase.rate / rates[0]:.2f} x {counts[0]} poller(s)")
        report_fairness(bench, phase)
        handed_back = sum(poller.output().count("(fair share is") for poller in phase.pollers)
        print(f"  leases handed back to even out the shares: {handed_back}")
        for poller in phase.pollers:
            stop(poller)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--mailboxes", type=int, default=20)
    options.add_argument("--messages", type=int, default=50_000)
    options.add_argument("--workers", type=int, default=2, help="pollers in the load phase")
    options.add_argument("--lease-seconds", type=int, default=10)
    options.add_argument("--baseline-share", type=float, default=0.1,
                         help="share of the messages the single baseline poller drains")
    options.add_argument("--workload", type=Workload.parse, default=Workload.parse("mix"),
                         help="mix (a fifth of the replies decide a request each) or "
                              "matched:R (every message answers one of R requests)")
    options.add_argument("--pollers", help="scaling phases instead, e.g. 1,2,4")
    options.add_argument("--parse-workers", type=int, default=os.cpu_count() or 1,
                         help="[service] parse_workers (default: the CPUs, as ackmail's)")
    args = options.parse_args()
    if args.workers < 2 and not args.pollers:
        options.error("--workers must be at least 2: one is killed for the takeover")
    print(f"{args.mailboxes} mailboxes, {args.messages} messages, {args.workers} pollers, "
          f"lease_seconds {args.lease_seconds}, parse_workers {args.parse_workers}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run")
    wall = time.monotonic()
    key = generate_signing_key()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    databases = Databases(workdir)
    processes = AckmailProcesses(workdir / "logs")
    try:
        with DovecotServer(TokenTrust(key.issuer, key.public_pem)) as server:
            folders = [f"in{n:02d}" for n in range(1, args.mailboxes + 1)]
            for folder in folders:
                server.create_folder(server.users.bob.address, folder)
            url = databases.fresh("postgresql")
            engine = make_engine(url)
            try:
                env = install(workdir, server, url, folders, args)
                bench = Bench(server, engine, env, processes, folders)
                if args.pollers:
                    scale(bench, [int(n) for n in args.pollers.split(",")], args)
                else:
                    run(bench, args)
            finally:
                stop_all(processes)  # before Dovecot stops: a poller must not outlive it
                engine.dispose()
    finally:
        databases.drop_all()
    print(f"wall time {time.monotonic() - wall:.0f} s (logs in {workdir / 'logs'})")


if __name__ == "__main__":
    main()
