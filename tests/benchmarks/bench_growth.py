"""Does ingest slow down as the database grows? The matched backlog into a database that
already holds 100,000 and 1,000,000 older responses, against an empty one, in one run.

    .venv/bin/python -m tests.benchmarks.bench_growth [--existing 100000,1000000]
        [--messages 2000] [--workload matched:2000] [--dialects sqlite,postgresql]
        [--repeat 3] [--runs 7]

Needs PostgreSQL at $ACKMAIL_TEST_POSTGRES_URL. For each dialect and size it fills a fresh
database at the migrations' head, in the database itself (``generate_series`` on
PostgreSQL, a recursive CTE on SQLite): ``existing`` responses with their messages and
events, a tenth as many requests (two recipients each), 5 % more ignored messages, spread
over 90 days. Then, ``--repeat`` times, the ingest rate of the backlog into it is paired
with the rate into a fresh empty database measured just before: the store side of the
pipeline (``process_batch`` in batches of 200, as the poller cuts them; parsing done
beforehand, so the database's share is all that is timed). It prints the median rate and
the median of the pairs' ratios, then ``acks list --since 24h`` (``list_responses``) and a
request's page over HTTP (``GET /requests/<id>``, rendering included), median of ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from ingest.parse.message import ParseOptions
from ingest.pipeline import Arrival, PipelineConfig, process_batch
from ingest.pipeline.pool import InProcessPreparer
from ingest.sources.base import SourceRef
from ingest.store import queries
from ingest.store.db import make_engine, read_session
from ingest.store.models import Request
from ingest.timeutil import utcnow
from tests.benchmarks.backlog import Databases, Workload, backlog
from tests.benchmarks.bench_queries import fill, fill_sql, in_session, median_ms, page_ms
from tests.sources.mail import SECRET

BATCH = 200
CONFIG = PipelineConfig(ParseOptions(), SECRET)
DAYS_90 = 90 * 86400


def _ago(n: str, prime: int) -> str:
    """A timestamp as SQLAlchemy stores it on SQLite, spread over 90 days by ``n``."""
    return (f"strftime('%Y-%m-%d %H:%M:%S', 'now', '-' || (({n}) * {prime} % {DAYS_90}) "
            "|| ' seconds') || '.000000'")


def sqlite_fill_sql(requests: int, responses: int, ignored: int) -> tuple[str, ...]:
    """``bench_queries.fill_sql``'s rows for SQLite (deterministic spreads for random())."""
    def series(count: int, first: int = 1) -> str:
        return (f"WITH RECURSIVE s(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM s "
                f"WHERE n < {count + first - 1}) ")
    created = _ago("n", 7919)
    return (
        series(requests) + f"""INSERT INTO requests (id, kind, ref, subject, status, policy,
                                                     created_at, expires_at, decided_at)
        SELECT n, CASE WHEN n % 4 = 0 THEN 'alert' ELSE 'approval' END,
               CASE WHEN n % 4 = 0 THEN 'ALERT-' ELSE 'CR-' END || n, 'Change request ' || n,
               CASE n % 6 WHEN 0 THEN 'approved' WHEN 1 THEN 'approved' WHEN 2 THEN 'rejected'
                          WHEN 3 THEN 'acknowledged' WHEN 4 THEN 'expired' ELSE 'pending' END,
               'any', {created}, strftime('%Y-%m-%d %H:%M:%S', {created}, '+3 days') || '.000000',
               CASE WHEN n % 6 < 4 THEN strftime('%Y-%m-%d %H:%M:%S', {created}, '+1 days')
                                        || '.000000' END
        FROM s""",
        series(2 * requests, 0) + """INSERT INTO recipients (request_id, address, token,
                                          token_nonce, outgoing_message_id, created_at)
        SELECT 1 + n / 2, 'user' || (n + 2) % 5000 || '@example.test', 'T' || printf('%09d', n + 2),
               'n', '<o' || (1 + n / 2) || '.' || (n % 2) || '@x>',
               strftime('%Y-%m-%d %H:%M:%S', 'now') || '.000000'
        FROM s""",
        series(responses + ignored) + f"""INSERT INTO messages (id, mailbox, source_key, folder,
               uidvalidity, uid, message_id_header, content_hash, size, sender, subject, kind,
               status, reason, reasons, request_id, received_at, recorded_at)
        SELECT n, CASE n % 3 WHEN 0 THEN 'approvals' WHEN 1 THEN 'alerts' ELSE 'ops' END,
               'imap:INBOX:1:' || n, 'INBOX', 1, n, '<m' || n || '@x>', printf('%064x', n), 2000,
               'user' || n % 5000 || '@example.test', 'RE: Change request',
               CASE WHEN n <= {responses} THEN 'reply' ELSE 'new' END,
               CASE WHEN n <= {responses} THEN 'processed' ELSE 'ignored' END,
               'benchmark', '[]', CASE WHEN n <= {responses} THEN 1 + n % {requests} END,
               {_ago("n", 104729)}, {_ago("n", 104729)}
        FROM s""",
        f"""INSERT INTO responses (request_id, message_id, mailbox, address, intent, reply_text,
                                   counted, decisive, reason, evidence, received_at, created_at)
            SELECT request_id, id, mailbox, sender,
                   CASE id % 4 WHEN 0 THEN 'approve' WHEN 1 THEN 'reject'
                               WHEN 2 THEN 'acknowledge' ELSE 'unknown' END, 'Approved.',
                   1, id <= {requests}, 'benchmark', '[]', received_at, recorded_at
            FROM messages WHERE id <= {responses}""",
        """INSERT INTO events (type, request_id, response_id, message_id, mailbox, payload,
                               created_at, processed_at)
           SELECT 'response.recorded', request_id, id, message_id, mailbox, '{}', created_at,
                  created_at
           FROM responses""",
        "ANALYZE",
    )


def filled(databases: Databases, dialect: str, existing: int) -> str:
    """A fresh database holding ``existing`` older responses (and their rows)."""
    url = databases.fresh(dialect)
    if not existing:
        return url
    engine = make_engine(url)
    try:
        counts = (max(1, existing // 10), existing, existing // 20)
        if dialect == "postgresql":
            fill(engine, fill_sql(*counts))
            return url
        started = time.perf_counter()
        with engine.begin() as connection:
            for statement in sqlite_fill_sql(*counts):
                connection.execute(text(statement))
        print(f"filled in {time.perf_counter() - started:.0f} s")
    finally:
        engine.dispose()
    return url


def ingest_rate(url: str, count: int, workload: Workload) -> float:
    """Messages a second through the store side of the pipeline (parsing done beforehand)."""
    messages = backlog(url, count, workload)
    now = utcnow()
    arrivals = [Arrival(SourceRef("bench", f"imap:INBOX:7:{time.time_ns()}.{n}", "INBOX", 7, n,
                                  received_at=now), raw) for n, raw in enumerate(messages)]
    batches = [arrivals[first:first + BATCH] for first in range(0, len(arrivals), BATCH)]
    preparer = InProcessPreparer(CONFIG)
    prepared = [preparer.prepare([arrival.raw for arrival in batch]) for batch in batches]
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        for batch, ready in zip(batches, prepared, strict=True):
            process_batch(engine, CONFIG, batch, preparing=lambda ready=ready: ready)
        return count / (time.perf_counter() - started)
    finally:
        engine.dispose()


def read_times(url: str, runs: int) -> tuple[float, float]:
    """``acks list --since 24h`` and a request's page over HTTP, median milliseconds."""
    engine = make_engine(url)
    try:
        day_ago = utcnow() - timedelta(hours=24)
        listing = median_ms(lambda: in_session(engine, lambda s: queries.list_responses(
            s, since=day_ago)), runs)
        return listing, page_ms(engine, f"/requests/{_a_request(engine)}", runs)
    finally:
        engine.dispose()


def _a_request(engine: Engine) -> int:
    with read_session(engine) as session:
        # The middle one: an older request when the database was filled.
        highest = session.scalar(select(func.max(Request.id))) or 1
        return max(1, highest // 2)


def measure(databases: Databases, dialect: str, existing: int, args: argparse.Namespace,
            workload: Workload) -> None:
    url = filled(databases, dialect, existing)
    rates: list[float] = []
    ratios: list[float] = []
    for _ in range(args.repeat):
        empty = databases.fresh(dialect)
        base = ingest_rate(empty, args.messages, workload)
        databases.drop(empty)
        rates.append(ingest_rate(url, args.messages, workload))
        ratios.append(rates[-1] / base)
        print(f"    pair: empty {base:6.0f} msg/s, {existing:>9,} existing "
              f"{rates[-1]:6.0f} msg/s: {ratios[-1]:.2f}", flush=True)
    listing, page = read_times(url, args.runs)
    print(f"  {dialect:<10} {existing:>9,} existing: {statistics.median(rates):6.0f} msg/s, "
          f"{statistics.median(ratios):.2f} of the empty database's "
          f"(pairs {min(ratios):.2f}-{max(ratios):.2f}); acks list --since 24h "
          f"{listing:5.1f} ms; GET /requests/<id> {page:5.1f} ms", flush=True)
    databases.drop(url)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--existing", default="100000,1000000",
                         help="older responses already stored, comma-separated (0: empty)")
    options.add_argument("--messages", type=int, default=2000, help="the backlog's size")
    options.add_argument("--workload", default="matched:2000",
                         help="mix, or matched:R (every message answers one of R requests)")
    options.add_argument("--dialects", default="sqlite,postgresql")
    options.add_argument("--repeat", type=int, default=3, help="empty/filled pairs per size")
    options.add_argument("--runs", type=int, default=7, help="timed runs per read")
    args = options.parse_args()
    workload = Workload.parse(args.workload)
    print(f"backlog: {args.messages} messages ({workload.name}), store side, batches of "
          f"{BATCH}; each rate paired with an empty database's")
    databases = Databases(Path(tempfile.mkdtemp(prefix="bench-growth-")))
    try:
        for dialect in args.dialects.split(","):
            for existing in (int(size) for size in args.existing.split(",")):
                measure(databases, dialect, existing, args, workload)
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
