"""Mailbox throughput, memory and IDLE latency against the real Dovecot, in one run.

    .venv/bin/python -m tests.benchmarks.bench_sources [--sizes 1000,5000,20000]
        [--workloads mix,matched:20,matched:2000] [--latency 200] [--repeat 3]

Needs what the test suite needs: root, Dovecot, and PostgreSQL at
$ACKMAIL_TEST_POSTGRES_URL. Prints, for each size and workload:
- raw fetch: imapclient's batched UID FETCH (BODY.PEEK[] INTERNALDATE), nothing else;
- pipeline: the Poller (``poll --once``'s work) in a child process whose imports and
  database driver are loaded before the clock starts, into SQLite and into PostgreSQL;
- whole process: the real ``ackmail poll --once --no-dispatch`` from its exec to its exit,
  start-up included, reading an ackmail.toml as a user's installation does;
each as its ratio to the raw rate, and the peak RSS of each run (VmHWM: every run is its
own process, so the numbers are comparable).
The workloads (``backlog.Workload``): ``mix`` — a fifth of the ~2.5 KB replies answer a
request each, the rest nothing; ``matched:R`` — every message answers one of R requests.
Then the delivery -> recorded latency with IDLE (p50/p99, one delivery at a time).
Then the same for Microsoft Graph against its test server (``bench_graph.py``): each
workload at the first size, the Graph source alone as the baseline, and its latency.

This machine's CPU speed drifts by up to 2x within minutes, so each measured run is
paired with a raw run taken just before it, on the same loaded mailbox; the ratio is
the median over ``--repeat`` pairs (each printed), and the rates shown are each column's
median run. SQLite and PostgreSQL take turns going first, every run has a fresh database,
and every pair starts with the processed folder deleted: Dovecot's MOVE slows as its
destination fills, which made later runs pay for earlier ones.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import Engine, func, select

from ingest.config import MailboxConfig, SecurityConfig, Settings
from ingest.config.reader import Secret
from ingest.parse.message import ParseOptions
from ingest.pipeline import PipelineConfig
from ingest.poller.service import Poller, PollOptions
from ingest.store.db import make_engine, read_session
from ingest.store.models import Message
from ingest.timeutil import utcnow
from tests.benchmarks.backlog import DIALECTS, Databases, Run, Workload, backlog, peak_rss_kb
from tests.servers.ackmail_config import config_env, write_config
from tests.servers.dovecot import DovecotServer, TokenTrust
from tests.servers.dovecot_fixtures import generate_signing_key
from tests.sources.mail import SECRET, unrelated

PASSWORD_ENV = "BENCH_IMAP_PASSWORD"
WORKERS_ENV = "BENCH_PARSE_WORKERS"
FETCH_BATCH = 200
PROCESSED = "done"
# ``ackmail`` as its console script runs it, telling its peak memory on the way out.
WHOLE = ("import atexit, sys\n"
         "atexit.register(lambda: print(*(l for l in open('/proc/self/status')\n"
         "    if l.startswith('VmHWM:')), file=sys.stderr))\n"
         "from ingest.cli import main\n"
         "sys.exit(main())\n")


# --- the measured jobs, each run in a child process of its own


def raw_fetch(port: int, ca: str, user: str) -> int:
    """Fetch every message of INBOX in batches, as the IMAP source does, and drop it."""
    count = 0
    with IMAPClient("127.0.0.1", port=port, ssl=True,
                    ssl_context=_context(ca), timeout=60) as client:
        client.login(user, os.environ[PASSWORD_ENV])
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["UID", "1:*"])
        for first in range(0, len(uids), FETCH_BATCH):
            response = client.fetch(uids[first:first + FETCH_BATCH],
                                    [b"BODY.PEEK[]", b"INTERNALDATE"])
            count += sum(len(data[b"BODY[]"]) > 0 for data in response.values())
    return count


def poll_once(port: int, ca: str, user: str, engine: Engine) -> int:
    """``ackmail poll --once`` on one IMAP mailbox; returns how many messages it handled."""
    box = MailboxConfig(name="bench", protocol="imap", host="127.0.0.1", port=port,
                        security="ssl", ca_file=Path(ca), username=user,
                        password=Secret(os.environ[PASSWORD_ENV], "env"),
                        processed_folder=PROCESSED)
    return drain(_settings(box), engine)


def drain(settings: Settings, engine: Engine) -> int:
    """A ``poll --once`` of the settings' one mailbox; how many messages it handled."""
    summary = Poller(settings, engine, PipelineConfig(ParseOptions(), SECRET),
                     options=PollOptions(once=True)).run()
    engine.dispose()
    (result,) = summary.mailboxes
    if result.error:
        raise SystemExit(f"poll failed: {result.error}")
    return result.total


def _settings(*boxes: MailboxConfig) -> Settings:
    state = Path(tempfile.mkdtemp(prefix="bench-state-"))
    return Settings(path=state / "ackmail.toml", database_url="sqlite://",
                    parse_workers=int(os.environ.get(WORKERS_ENV, "0")),
                    security=SecurityConfig(token_secret=Secret(SECRET, "bench")),
                    mailboxes=boxes, state_dir=state)


def _context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def child(argv: list[str]) -> None:
    """The child's side: run one job, print its Run as JSON."""
    job, port, ca, user, *rest = argv
    # Imports are not what is measured: the database driver, which SQLAlchemy imports when
    # the engine is made, is imported before the clock starts, as ackmail's own modules are.
    engine = make_engine(rest[0]) if job == "poll" else None
    started = time.perf_counter()
    count = raw_fetch(int(port), ca, user) if engine is None else \
        poll_once(int(port), ca, user, engine)
    seconds = time.perf_counter() - started
    print(json.dumps({"messages": count, "seconds": seconds, "maxrss_kb": peak_rss_kb()}))


def measure(server: DovecotServer, job: str, *extra: str) -> Run:
    """Run ``job`` (raw or pipeline) in a fresh Python process against ``server``."""
    bob = server.users.bob
    assert bob.password is not None
    argv = [sys.executable, "-m", "tests.benchmarks.bench_sources", "--child", job,
            str(server.imaps_port), str(server.pki.ca_pem), bob.address, *extra]
    done = subprocess.run(argv, env=os.environ | {PASSWORD_ENV: bob.password.reveal()},
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{job} failed:\n{done.stderr}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def measure_whole(server: DovecotServer, db_url: str, count: int, workdir: Path) -> Run:
    """``ackmail poll --once`` as a user runs it: exec to exit, start-up included."""
    bob = server.users.bob
    assert bob.password is not None
    root = Path(tempfile.mkdtemp(prefix="whole-", dir=workdir))
    mailbox = (f'[[mailbox]]\nname = "bench"\nprotocol = "imap"\nhost = "127.0.0.1"\n'
               f'port = {server.imaps_port}\nsecurity = "ssl"\n'
               f'ca_file = "{server.pki.ca_pem}"\nusername = "{bob.address}"\n'
               f'password = {{ env = "{PASSWORD_ENV}" }}\nprocessed_folder = "{PROCESSED}"\n')
    config = write_config(root, {"parse_workers": int(os.environ[WORKERS_ENV])}, mailbox)
    env = os.environ | config_env(config, db_url) | {PASSWORD_ENV: bob.password.reveal()}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WHOLE, "poll", "--once", "--no-dispatch"],
                          env=env, capture_output=True, text=True, check=False, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ackmail poll --once failed:\n{done.stderr[-4000:]}")
    recorded = _recorded(db_url)
    if recorded != count:
        raise SystemExit(f"ackmail poll --once recorded {recorded} of {count} messages")
    peak = [line for line in done.stderr.splitlines() if line.startswith("VmHWM:")]
    return Run(recorded, seconds, int(peak[-1].split()[1]))


def _recorded(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with read_session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(Message)) or 0)
    finally:
        engine.dispose()


def idle_latency(server: DovecotServer, db_url: str, deliveries: int) -> list[float]:
    """Seconds from each delivery to its record, with a long-running poller on IDLE."""
    bob = server.users.bob
    box = MailboxConfig(name="bench", protocol="imap", host="127.0.0.1",
                        port=server.imaps_port, security="ssl", ca_file=server.pki.ca_pem,
                        username=bob.address, password=bob.password, processed_folder=PROCESSED)
    # A real delivery (doveadm save, as an MTA's LDA): Dovecot notifies IDLE sessions.
    # Files written straight into new/ are noticed only at the next mailbox sync.
    return delivery_latency(_settings(box), db_url, deliveries,
                            lambda: server.deliver(bob.address, unrelated("latency ")))


def delivery_latency(settings: Settings, db_url: str, deliveries: int,
                     deliver: Callable[[], object]) -> list[float]:
    """Seconds from each ``deliver()`` to its record, with a long-running poller."""
    engine = make_engine(db_url)
    poller = Poller(settings, engine, PipelineConfig(ParseOptions(), SECRET))
    thread = threading.Thread(target=poller.run, name="bench-poller")
    thread.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)  # connected and waiting
        for n in range(deliveries):
            delivered = utcnow()
            deliver()
            recorded = _wait_for_record(engine, n + 1)
            latencies.append((recorded - delivered).total_seconds())
    finally:
        poller.stop()
        thread.join()
        engine.dispose()
    return latencies


def _wait_for_record(engine: Any, count: int, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(engine) as session:
            if (session.scalar(select(func.count()).select_from(Message)) or 0) >= count:
                return session.scalar(select(func.max(Message.recorded_at)))
        time.sleep(0.005)
    raise SystemExit(f"message {count} was not recorded within {timeout:.0f} s")


# --- the report


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--sizes", default="1000",
                         help="backlog sizes, comma-separated (e.g. 1000,5000,20000)")
    options.add_argument("--workloads", default="mix,matched:20,matched:2000",
                         help="mix (a fifth answer a request) and/or matched:R (all "
                              "answer one of R requests), comma-separated")
    options.add_argument("--jobs", default="pipeline,whole",
                         help="what to pair with raw FETCH: pipeline and/or whole")
    options.add_argument("--latency", type=int, default=200, help="IDLE deliveries to time")
    options.add_argument("--parse-workers", type=int, default=os.cpu_count() or 1,
                         help="[service] parse_workers (default: the CPUs, as ackmail's)")
    options.add_argument("--repeat", type=int, default=3,
                         help="raw/measured pairs per database, job, workload and size")
    options.add_argument("--graph-latency", type=int, default=30,
                         help="Graph deliveries to time (the Graph column runs at the first size)")
    args = options.parse_args()
    try:
        workloads = [Workload.parse(item) for item in args.workloads.split(",")]
    except ValueError as exc:
        options.error(str(exc))
    jobs = [job for job in args.jobs.split(",") if job in JOBS]
    sizes = [int(size) for size in args.sizes.split(",")]
    os.environ[WORKERS_ENV] = str(args.parse_workers)
    print(f"[service] parse_workers = {args.parse_workers}; {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.1f} before the run")
    key = generate_signing_key()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    databases = Databases(workdir)
    try:
        with DovecotServer(TokenTrust(key.issuer, key.public_pem)) as server:
            bench = Bench(server, databases, workdir, args.repeat)
            for count in sizes:
                for workload in workloads:
                    bench.report(count, workload, jobs)
            if args.latency:
                report_latency(server, databases.fresh("sqlite"), args.latency)
        # bench_graph builds on this module's helpers, so it is imported once they exist.
        from tests.benchmarks.bench_graph import report_graph
        for n, workload in enumerate(workloads, start=1):
            report_graph(databases, workdir, sizes[0], workload, args.repeat,
                         args.graph_latency if n == len(workloads) else 0)
    finally:
        databases.drop_all()


def report_latency(server: DovecotServer, db_url: str, deliveries: int) -> None:
    latencies = idle_latency(server, db_url, deliveries)
    print(f"IDLE delivery -> record over {len(latencies)} deliveries: "
          f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms, "
          f"mean {statistics.fmean(latencies) * 1000:.0f} ms")


# The measured columns, each paired with a raw FETCH of the same loaded mailbox.
JOBS = ("pipeline", "whole")


@dataclass(frozen=True)
class Bench:
    """The server, the databases and the pairs' count every column uses."""

    server: DovecotServer
    databases: Databases
    workdir: Path
    repeat: int

    def pair(self, dialect: str, count: int, workload: Workload, job: str) -> tuple[Run, Run]:
        """A fresh database and mailbox; raw FETCH, then ``job``, on the same messages."""
        url = self.databases.fresh(dialect)
        self.server.deliver_many(self.server.users.bob.address, backlog(url, count, workload))
        raw = measure(self.server, "raw")
        run = measure(self.server, "poll", url) if job == "pipeline" else \
            measure_whole(self.server, url, count, self.workdir)
        # Dovecot's MOVE slows as the destination grows (0.5 -> 1.2 s for 5,000 into a
        # folder of 35,000): every run starts with the processed folder gone.
        self.server.delete_folder(self.server.users.bob.address, PROCESSED)
        self.databases.drop(url)
        return raw, run

    def report(self, count: int, workload: Workload, jobs: list[str]) -> None:
        """Raw fetch, then each job into SQLite and PostgreSQL, for ``count`` messages."""
        print(f"N = {count} ({workload.name}), median of {self.repeat} pairs", flush=True)
        raws: list[Run] = []
        runs: dict[tuple[str, str], list[Run]] = {}
        ratios: dict[tuple[str, str], list[float]] = {}
        for turn in range(self.repeat):
            # Each database goes first in every other round, so neither always follows.
            for dialect in DIALECTS[::-1] if turn % 2 else DIALECTS:
                for job in jobs:
                    raw, run = self.pair(dialect, count, workload, job)
                    raws.append(raw)
                    runs.setdefault((dialect, job), []).append(run)
                    ratios.setdefault((dialect, job), []).append(run.rate / raw.rate)
                    print(f"    {dialect:<10} {job:<8}  raw {raw.seconds:5.2f} s, measured "
                          f"{run.seconds:5.2f} s: {ratios[dialect, job][-1]:.3f}", flush=True)
        _print_row("raw", raws, "")
        for (dialect, job), measured in runs.items():
            share = ratios[dialect, job]
            _print_row(f"{dialect} {job}", measured,
                       f"{statistics.median(share):.3f} of raw "
                       f"(pairs {min(share):.3f}-{max(share):.3f})")


def _print_row(name: str, runs: list[Run], ratio: str) -> None:
    middle = sorted(runs, key=lambda run: run.rate)[len(runs) // 2]
    peak = statistics.median(run.maxrss_kb for run in runs)
    print(f"  {name:<20} {middle.messages:6d} msgs {middle.seconds:7.2f} s "
          f"{middle.rate:8.0f} msg/s  peak RSS {peak / 1024:6.1f} MiB  {ratio}", flush=True)


if __name__ == "__main__":
    main()
