"""How fast ops read a big ack database: ``acks list --since 24h`` and the requests page.

    .venv/bin/python -m tests.benchmarks.bench_queries [--runs 7] [--keep | --database URL]

Fills a fresh PostgreSQL database (``ACKMAIL_TEST_POSTGRES_URL``'s server) at the
migrations' head with 100k requests, 200k recipients, 1M responses and their 1M messages
(plus 50k ignored), 1M events, spread over 90 days — server-side, with generate_series.
Then, for each query, it prints the median time of ``--runs`` runs through the real
code path (the query functions, and the page over HTTP), the EXPLAIN ANALYZE plan in
short, and the same query again with its index dropped (inside a rolled-back
transaction) as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session

from ingest.config import Settings
from ingest.store import queries
from ingest.store.db import make_engine
from ingest.store.migrate import upgrade
from ingest.store.models import Base
from ingest.timeutil import utcnow
from ingest.web.app import OpsApp, base_url, make_server, serving
from ingest.web.site import Site
from ingest.web.timeline import load_timeline
from tests.servers.postgres_fixtures import PG_ADMIN_URL

REQUESTS, RESPONSES, IGNORED = 100_000, 1_000_000, 50_000


def fill_sql(requests: int, responses: int, ignored: int) -> tuple[str, ...]:
    """The PostgreSQL statements that fill a database at the head with ``requests``
    requests (two recipients each), ``responses`` responses with their messages and
    events, and ``ignored`` ignored messages, spread over 90 days."""
    return (
        "SELECT setseed(0.42)",
        f"""INSERT INTO requests (id, kind, ref, subject, status, policy, created_at, expires_at,
                                  decided_at)
            SELECT n, CASE WHEN n % 4 = 0 THEN 'alert' ELSE 'approval' END,
                   CASE WHEN n % 4 = 0 THEN 'ALERT-' ELSE 'CR-' END || n, 'Change request ' || n,
                   (ARRAY['approved','approved','rejected','acknowledged','expired','pending'])
                       [1 + n % 6],
                   'any', c, c + interval '3 days',
                   CASE WHEN n % 6 < 4 THEN c + random() * interval '2 days' END
            FROM (SELECT n, now() - random() * interval '90 days' AS c
                  FROM generate_series(1, {requests}) n) s""",
        f"""INSERT INTO recipients (request_id, address, token, token_nonce, outgoing_message_id,
                                    created_at)
            SELECT r, 'user' || (r * 2 + k) % 5000 || '@example.test',
                   'T' || lpad((r * 2 + k)::text, 9, '0'), 'n', '<o' || r || '.' || k || '@x>',
                   now()
            FROM generate_series(1, {requests}) r, generate_series(0, 1) k""",
        f"""INSERT INTO messages (id, mailbox, source_key, folder, uidvalidity, uid,
                                  message_id_header, content_hash, size, sender, subject, kind,
                                  status, reason, reasons, request_id, received_at, recorded_at)
            SELECT n, (ARRAY['approvals','alerts','ops'])[1 + n % 3], 'imap:INBOX:1:' || n, 'INBOX',
                   1, n, '<m' || n || '@x>', md5(n::text) || md5((n + 1)::text), 2000,
                   'user' || n % 5000 || '@example.test', 'RE: Change request',
                   CASE WHEN n <= {responses} THEN 'reply' ELSE 'new' END,
                   CASE WHEN n <= {responses} THEN 'processed' ELSE 'ignored' END,
                   'benchmark', '[]', CASE WHEN n <= {responses} THEN 1 + n % {requests} END,
                   t, t + random() * interval '30 seconds'
            FROM (SELECT n, now() - random() * interval '90 days' AS t
                  FROM generate_series(1, {responses + ignored}) n) s""",
        f"""INSERT INTO responses (request_id, message_id, mailbox, address, intent, reply_text,
                                   counted, decisive, reason, evidence, received_at, created_at)
            SELECT request_id, id, mailbox, sender,
                   (ARRAY['approve','reject','acknowledge','unknown'])[1 + id % 4], 'Approved.',
                   true, id <= {requests}, 'benchmark', '[]', received_at, recorded_at
            FROM messages WHERE id <= {responses}""",
        """INSERT INTO events (type, request_id, response_id, message_id, mailbox, payload,
                               created_at, processed_at)
           SELECT 'response.recorded', request_id, id, message_id, mailbox, '{}', created_at,
                  created_at
           FROM responses""",
        *(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
          for table in ("requests", "messages")),
        "ANALYZE",
    )


FILL = fill_sql(REQUESTS, RESPONSES, IGNORED)

Timed = Callable[[Session], object]


@contextmanager
def fresh_database(keep: bool) -> Iterator[str]:
    """A new database on the test server, dropped afterwards unless ``keep``."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ackmail_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        if keep:
            print(f"\nkept: --database {url}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def add_model_indexes(engine: Engine) -> None:
    """Create any index models.py declares that the migrations do not (yet) make."""
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                if not _index_exists(connection, str(index.name)):
                    print(f"index {index.name} is in models.py only: created for this run")
                    index.create(connection)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def fill(engine: Engine, statements: Sequence[str] = FILL) -> None:
    """Schema from the migrations, then the rows, server-side."""
    upgrade(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    print(f"filled in {time.perf_counter() - started:.0f} s")


def _index_exists(connection: Connection, name: str) -> bool:
    found = connection.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": name})
    return found.first() is not None


def median_ms(run: Callable[[], object], runs: int) -> float:
    run()  # warm the cache and the plan
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def statements_of(engine: Engine, call: Timed) -> list[tuple[str, Any]]:
    """The SQL (and parameters) ``call`` sends, captured from the engine."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            call(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def plan_summary(connection: Connection, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN ANALYZE in short: each plan node's name, rows and time, then the total."""
    rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
    lines = [str(row[0]) for row in rows]
    nodes = [line.split("(cost=")[0].replace("->", "").strip() + "  " + _actual(line)
             for line in lines if "(cost=" in line]
    return [*nodes[:8], *(line.strip() for line in lines if line.startswith("Execution Time"))]


def _execution_ms(plan: list[str]) -> float:
    last = plan[-1] if plan else ""
    return float(last.split(":")[1].split()[0]) if last.startswith("Execution Time") else 0.0


def _actual(line: str) -> str:
    part = line.split("(actual time=")[-1].split(")")[0] if "actual time=" in line else ""
    return f"[{part}]" if part else ""


def report(engine: Engine, label: str, call: Timed, runs: int, index: str | None) -> None:
    with Session(engine) as warm:
        call(warm)
    fast = median_ms(lambda: in_session(engine, call), runs)
    print(f"\n{label}: median {fast:.1f} ms over {runs} runs")
    with engine.connect() as connection:
        plans = [plan_summary(connection, statement, parameters)
                 for statement, parameters in statements_of(engine, call)]
    # A call may send several statements (the timeline sends six): show the slowest plan.
    for line in max(plans, key=_execution_ms):
        print(f"    {line}")
    if index is None:
        return
    with engine.connect() as connection:
        exists = _index_exists(connection, index)
    if not exists:
        print(f"  baseline: there is no index {index} to drop")
        return
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text(f'DROP INDEX "{index}"'))
        slow = median_ms(lambda: call(Session(bind=connection)), max(3, runs // 2))
        transaction.rollback()
    print(f"  baseline without {index}: median {slow:.1f} ms -> {slow / fast:.0f}x slower")


def in_session(engine: Engine, call: Timed) -> object:
    with Session(engine) as session:
        return call(session)


def page_ms(engine: Engine, path: str, runs: int) -> float:
    """The page as a browser gets it: the real server on 127.0.0.1, rendering included."""
    site = Site.create(Settings(path=Path(__file__), database_url=str(engine.url)), engine)
    with serving(make_server(OpsApp(site), "127.0.0.1", 0)) as server:
        url = base_url(server) + path

        def get() -> None:
            with urllib.request.urlopen(url, timeout=30) as answer:
                assert answer.status == 200
                answer.read()

        return median_ms(get, runs)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=7)
    options.add_argument("--keep", action="store_true", help="keep the filled database")
    options.add_argument("--database", metavar="URL", help="measure a database kept before")
    args = options.parse_args()
    if args.database:
        run(args.database, args.runs, filled=True)
        return
    with fresh_database(args.keep) as url:
        run(url, args.runs, filled=False)


def run(url: str, runs: int, *, filled: bool) -> None:
    engine = make_engine(url)
    try:
        if not filled:
            fill(engine)
        add_model_indexes(engine)
        measure(engine, runs)
    finally:
        engine.dispose()


def measure(engine: Engine, runs: int) -> None:
    day_ago = utcnow() - timedelta(hours=24)
    page = queries.Page(limit=51)
    report(engine, "acks list --since 24h (list_responses, limit 100)",
           lambda s: queries.list_responses(s, since=day_ago), runs, "ix_responses_received_at")
    report(engine, "requests page (list_requests, newest 51)",
           lambda s: queries.list_requests(s, page=page), runs, "ix_requests_created_at_id")
    report(engine, "requests page ?status=pending",
           lambda s: queries.list_requests(s, status="pending", page=page), runs,
           "ix_requests_status_created_at")
    report(engine, "requests page ?ref=CR-4242*",
           lambda s: queries.list_requests(s, ref="CR-4242*", page=page), runs, None)
    report(engine, "requests page ?page=40 (offset 1950)",
           lambda s: queries.list_requests(s, page=queries.Page(51, 1950)), runs, None)
    report(engine, "request timeline (load_timeline)",
           lambda s: load_timeline(s, 4242), runs, "ix_events_request_id")
    for path in ("/requests", "/requests?status=pending", "/requests/4242"):
        print(f"\nGET {path} over HTTP: median {page_ms(engine, path, runs):.1f} ms")


if __name__ == "__main__":
    main()
