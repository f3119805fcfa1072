"""The Microsoft Graph column of the sources benchmark (``bench_sources`` calls it).

Against the Graph-shaped test server and the test identity provider, both in this
process, over TLS on loopback, with the same messages as the IMAP columns:
- raw: the Graph source alone (delta pages and each message's ``$value``, four at a
  time), nothing recorded or moved — the baseline of this column;
- end to end: ``poll --once`` (the Poller) into SQLite and PostgreSQL, moves included;
each in its own process, paired as the IMAP columns are (raw just before end to end);
then the delivery -> record latency of a long-running poller at ``poll_interval = 1``.

    .venv/bin/python -m tests.benchmarks.bench_graph [--messages 2000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig, OAuthConfig, Settings
from ingest.config.reader import Secret
from ingest.sources.base import Cursor, SourceContext
from ingest.sources.graph import GraphSource
from ingest.store.db import make_engine
from tests.benchmarks.backlog import DIALECTS, Databases, Run, Workload, backlog, peak_rss_kb
from tests.benchmarks.bench_sources import (
    _print_row,
    _settings,
    delivery_latency,
    drain,
    percentile,
)
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.servers.tls import make_test_pki
from tests.sources.mail import unrelated

SECRET_ENV = "BENCH_GRAPH_SECRET"
CLIENT_ID = "6c1e2f0a-0b7d-4e57-9a0e-bench0000001"
UPN = "approvals@example.test"
PROCESSED = "ackmail/processed"
CACHE_KEY = Secret("bench-cache-key-" + "k" * 32, "bench")


def graph_box(endpoint: str, ca: str, authority: str, tenant: str, *,
              interval: int = 15) -> MailboxConfig:
    """The benchmark's Graph mailbox: app-only, its Inbox, filed into ackmail/processed."""
    oauth = OAuthConfig(tenant_id=tenant, client_id=CLIENT_ID, authority=authority,
                        ca_file=Path(ca), client_secret=Secret(os.environ[SECRET_ENV], "env"))
    return MailboxConfig(name="bench-graph", protocol="graph", graph_endpoint=endpoint,
                         ca_file=Path(ca), username=UPN, auth="oauth2-app", oauth=oauth,
                         processed_folder=PROCESSED, poll_interval_seconds=interval)


def _graph_settings(box: MailboxConfig) -> Settings:
    """The benchmark's settings, with the key the OAuth token cache is encrypted with."""
    settings = _settings(box)
    return replace(settings, security=replace(settings.security, cache_key=CACHE_KEY))


def raw_graph(box: MailboxConfig) -> int:
    """Read every message through the Graph source, as a pass does, and drop it."""
    state = Path(tempfile.mkdtemp(prefix="bench-graph-state-"))
    source = GraphSource(SourceContext(box, TokenProviders(state, CACHE_KEY),
                                       lambda keys: set()))
    source.connect()
    try:
        return sum(len(batch.items) for batch in source.fetch(Cursor()))
    finally:
        source.close()


def poll_graph(box: MailboxConfig, db_url: str) -> int:
    return drain(_graph_settings(box), make_engine(db_url))


def child(argv: list[str]) -> None:
    """The child's side: run one job, print its Run as JSON."""
    job, endpoint, ca, authority, tenant, *rest = argv
    box = graph_box(endpoint, ca, authority, tenant)
    if rest:
        make_engine(rest[0]).dispose()  # the driver's import is not what is measured
    started = time.perf_counter()
    count = poll_graph(box, rest[0]) if job == "poll" else raw_graph(box)
    seconds = time.perf_counter() - started
    print(json.dumps({"messages": count, "seconds": seconds, "maxrss_kb": peak_rss_kb()}))


class GraphBench:
    """The identity provider and the Graph server, running for the benchmark."""

    def __init__(self, workdir: Path) -> None:
        pki = make_test_pki(workdir / "tls")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.secret = "bench-graph-secret"
        self.idp = IdentityProvider(pki, key).start()
        self.idp.register_client(CLIENT_ID, secret=self.secret)
        self.server = GraphServer(pki, self.idp, workdir / "graph").start()
        self.ca = str(pki.ca_pem)

    def close(self) -> None:
        self.server.stop()
        self.idp.stop()

    def measure(self, job: str, *extra: str) -> Run:
        argv = [sys.executable, "-m", "tests.benchmarks.bench_graph", "--child", job,
                self.server.endpoint, self.ca, self.idp.base_url, self.idp.tenant, *extra]
        done = subprocess.run(argv, env=os.environ | {SECRET_ENV: self.secret},
                              capture_output=True, text=True, check=False, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"graph {job} failed:\n{done.stderr}")
        return Run(**json.loads(done.stdout.strip().splitlines()[-1]))

    def latency(self, db_url: str, deliveries: int) -> list[float]:
        """Seconds from each delivery to its record, a poller polling every second."""
        os.environ[SECRET_ENV] = self.secret
        box = graph_box(self.server.endpoint, self.ca, self.idp.base_url, self.idp.tenant,
                        interval=1)
        return delivery_latency(_graph_settings(box), db_url, deliveries,
                                lambda: self.server.deliver(UPN, unrelated("latency ")))


def report_graph(databases: Databases, workdir: Path, count: int, workload: Workload,
                 repeat: int, deliveries: int) -> None:
    """The Graph column for ``count`` messages, and its delivery -> record latency."""
    bench = GraphBench(workdir)
    try:
        print(f"Microsoft Graph (test server), N = {count} ({workload.name}), "
              f"median of {repeat} pairs")
        raws: list[Run] = []
        results: dict[str, list[Run]] = {}
        ratios: dict[str, list[float]] = {}
        for turn in range(repeat):
            for dialect in DIALECTS[::-1] if turn % 2 else DIALECTS:
                url = databases.fresh(dialect)
                bench.server.deliver_many(UPN, backlog(url, count, workload))
                raw, run = bench.measure("raw"), bench.measure("poll", url)
                raws.append(raw)
                results.setdefault(dialect, []).append(run)
                ratios.setdefault(dialect, []).append(run.rate / raw.rate)
                print(f"    pair {len(ratios[dialect])} graph {dialect:<10} raw "
                      f"{raw.seconds:5.2f} s, end to end {run.seconds:5.2f} s: "
                      f"{ratios[dialect][-1]:.1%}", flush=True)
        _print_row("graph raw", raws, "")
        for dialect in DIALECTS:
            _print_row(f"graph {dialect}", results[dialect],
                       f"{statistics.median(ratios[dialect]):6.1%} of graph raw")
        if deliveries:
            latencies = bench.latency(databases.fresh("sqlite"), deliveries)
            print(f"Graph delivery -> record (poll_interval 1 s) over {len(latencies)} "
                  f"deliveries: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                  f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                  f"max {max(latencies) * 1000:.0f} ms")
    finally:
        bench.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--messages", type=int, default=2000)
    options.add_argument("--workload", default="mix", help="mix or matched:R")
    options.add_argument("--repeat", type=int, default=1)
    options.add_argument("--latency", type=int, default=30, help="deliveries to time")
    args = options.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    databases = Databases(workdir)
    try:
        report_graph(databases, workdir, args.messages, Workload.parse(args.workload),
                     args.repeat, args.latency)
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
