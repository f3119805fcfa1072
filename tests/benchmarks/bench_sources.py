"""Mailbox throughput, memory and IDLE latency against the real Dovecot, in one run.

    .venv/bin/python -m tests.benchmarks.bench_sources [--messages 5000] [--small 1000]
                                                       [--latency 200] [--repeat 3]

Needs what the test suite needs: root, Dovecot, and PostgreSQL at
$ACKMAIL_TEST_POSTGRES_URL. Prints, for a small and a large N:
- raw fetch: imapclient's batched UID FETCH (BODY.PEEK[] INTERNALDATE), nothing else;
- end to end: ``poll --once`` (the Poller) into SQLite and into PostgreSQL, then the ratio
  to the raw rate;
- peak RSS of each run (each runs in its own process, so the numbers are comparable);
and the delivery -> recorded latency with IDLE (p50/p99, one delivery at a time);
then the same for Microsoft Graph against its test server (``bench_graph.py``).
The messages are ~2.5 KB replies: a fifth answer a request (``--matched``), the rest not.

This machine's CPU speed drifts by up to 2x within minutes, so each end-to-end run is
paired with a raw run taken just before it, on the same loaded mailbox; the ratio is
the median over ``--repeat`` pairs (each printed), and the rates shown are each column's
best run. SQLite and PostgreSQL take turns going first, and every pair starts with the
processed folder deleted: Dovecot's MOVE slows as its destination fills, which made
later runs pay for earlier ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import Engine, create_engine, func, make_url, select, text

from ingest.config import MailboxConfig, SecurityConfig, Settings
from ingest.config.reader import Secret
from ingest.parse.message import ParseOptions
from ingest.pipeline import PipelineConfig
from ingest.poller.service import Poller, PollOptions
from ingest.store.db import make_engine, read_session
from ingest.store.migrate import upgrade
from ingest.store.models import Message
from ingest.timeutil import utcnow
from tests.servers.dovecot import DovecotServer, TokenTrust
from tests.servers.dovecot_fixtures import generate_signing_key
from tests.servers.postgres_fixtures import PG_ADMIN_URL
from tests.sources.mail import SECRET, reply, request_for, unrelated

PASSWORD_ENV = "BENCH_IMAP_PASSWORD"
WORKERS_ENV = "BENCH_PARSE_WORKERS"
FETCH_BATCH = 200
PROCESSED = "done"
DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Run:
    """One measured run: messages, seconds, and the process's peak RSS."""

    messages: int
    seconds: float
    maxrss_kb: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --- the two measured jobs, each run in a child process


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
    settings = _settings(box)
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


def peak_rss_kb(pid: int | str = "self") -> int:
    """A process's peak RSS (this one's by default; 0 for one that has ended). getrusage's
    ru_maxrss would carry the parent's peak across fork+exec (Linux keeps the larger one),
    so read the address space's VmHWM."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if pid == "self" else 0


def measure(server: DovecotServer, job: str, *extra: str) -> Run:
    """Run ``job`` in a fresh Python process against ``server``."""
    bob = server.users.bob
    assert bob.password is not None
    argv = [sys.executable, "-m", "tests.benchmarks.bench_sources", "--child", job,
            str(server.imaps_port), str(server.pki.ca_pem), bob.address, *extra]
    done = subprocess.run(argv, env=os.environ | {PASSWORD_ENV: bob.password.reveal()},
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{job} failed:\n{done.stderr}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


# --- setup: databases, requests, messages


class Databases:
    """Fresh SQLite files and PostgreSQL databases, dropped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def fresh(self, dialect: str) -> str:
        name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if dialect == "sqlite":
            url = f"sqlite:///{self.workdir / (name + '.db')}"
        else:
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def make_messages(db_url: str, count: int, matched: float) -> list[bytes]:
    """Register requests in the database and return ``count`` messages, ``matched`` of
    them answering one (those come first)."""
    engine = make_engine(db_url)
    answering = int(count * matched)
    tokens = [request_for(engine, ref=f"BENCH-{n}").recipients[0].token
              for n in range(answering)]
    engine.dispose()
    return [reply(token) for token in tokens] + \
        [unrelated("bench ") for _ in range(count - answering)]


def load(server: DovecotServer, db_url: str, count: int, matched: float) -> None:
    """Deliver ``count`` messages into bob's INBOX, ``matched`` of them answering a request."""
    server.deliver_many(server.users.bob.address, make_messages(db_url, count, matched))


def idle_latency(server: DovecotServer, db_url: str, deliveries: int) -> list[float]:
    """Seconds from each delivery to its record, with a long-running poller on IDLE."""
    bob = server.users.bob
    box = MailboxConfig(name="bench", protocol="imap", host="127.0.0.1",
                        port=server.imaps_port, security="ssl", ca_file=server.pki.ca_pem,
                        username=bob.address, password=bob.password, processed_folder=PROCESSED)
    engine = make_engine(db_url)
    poller = Poller(_settings(box), engine, PipelineConfig(ParseOptions(), SECRET))
    thread = threading.Thread(target=poller.run, name="bench-poller")
    thread.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)  # connected and idling
        for n in range(deliveries):
            delivered = utcnow()
            # A real delivery (doveadm save, as an MTA's LDA): Dovecot notifies IDLE sessions.
            # Files written straight into new/ are noticed only at the next mailbox sync.
            server.deliver(bob.address, unrelated("latency "))
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
    options.add_argument("--messages", type=int, default=5000)
    options.add_argument("--small", type=int, default=1000)
    options.add_argument("--latency", type=int, default=200, help="IDLE deliveries to time")
    options.add_argument("--matched", type=float, default=0.2,
                         help="share of replies that answer a request")
    options.add_argument("--parse-workers", type=int, default=os.cpu_count() or 1,
                         help="[service] parse_workers (default: the CPUs, as ackmail's)")
    options.add_argument("--repeat", type=int, default=3,
                         help="raw/end-to-end pairs per database and size")
    options.add_argument("--graph-latency", type=int, default=30,
                         help="Graph deliveries to time (the Graph column runs at --messages)")
    args = options.parse_args()
    os.environ[WORKERS_ENV] = str(args.parse_workers)
    print(f"[service] parse_workers = {args.parse_workers}")
    key = generate_signing_key()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    databases = Databases(workdir)
    try:
        with DovecotServer(TokenTrust(key.issuer, key.public_pem)) as server:
            for count in (args.small, args.messages):
                report_size(server, databases, count, args.matched, args.repeat)
            if args.latency:
                latencies = idle_latency(server, databases.fresh("sqlite"), args.latency)
                print(f"IDLE delivery -> record over {len(latencies)} deliveries: "
                      f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                      f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                      f"max {max(latencies) * 1000:.0f} ms, "
                      f"mean {statistics.fmean(latencies) * 1000:.0f} ms")
        # bench_graph builds on this module's helpers, so it is imported once they exist.
        from tests.benchmarks.bench_graph import report_graph
        report_graph(databases, workdir, args.messages, args.matched, args.repeat,
                     args.graph_latency)
    finally:
        databases.drop_all()


def report_size(server: DovecotServer, databases: Databases, count: int, matched: float,
                repeat: int) -> None:
    """Raw fetch, then end to end into SQLite and PostgreSQL, for ``count`` messages."""
    print(f"N = {count} messages (~2.5 KB, {matched:.0%} answering a request), "
          f"best of {repeat} runs, ratio the median of {repeat} pairs")
    raws: list[Run] = []
    results: dict[str, list[Run]] = {}
    ratios: dict[str, list[float]] = {}
    for turn in range(repeat):
        # Each database goes first in every other round, so neither always follows the other.
        for dialect in DIALECTS[::-1] if turn % 2 else DIALECTS:
            url = databases.fresh(dialect)
            load(server, url, count, matched)
            raw, run = measure(server, "raw"), measure(server, "poll", url)
            # Dovecot's MOVE slows as the destination grows (0.5 -> 1.2 s for 5,000 into a
            # folder of 35,000): every run starts with the processed folder gone.
            server.delete_folder(server.users.bob.address, PROCESSED)
            raws.append(raw)
            results.setdefault(dialect, []).append(run)
            ratios.setdefault(dialect, []).append(run.rate / raw.rate)
            print(f"    pair {len(ratios[dialect])} {dialect:<10}  raw {raw.seconds:5.2f} s, "
                  f"end to end {run.seconds:5.2f} s: {ratios[dialect][-1]:.1%}", flush=True)
    _print_row("raw", raws, "")
    for dialect in DIALECTS:
        runs = results[dialect]
        _print_row(dialect, runs, f"{statistics.median(ratios[dialect]):6.1%} of raw "
                   f"(pairs {min(ratios[dialect]):.1%}-{max(ratios[dialect]):.1%})")


def _print_row(name: str, runs: list[Run], ratio: str) -> None:
    best = max(runs, key=lambda run: run.rate)
    peak = max(run.maxrss_kb for run in runs)
    print(f"  {name:<11} {best.messages:6d} msgs {best.seconds:7.2f} s "
          f"{best.rate:8.0f} msg/s  peak RSS {peak / 1024:6.1f} MiB  {ratio}")


if __name__ == "__main__":
    main()
