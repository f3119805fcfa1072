"""Planner statistics for the tables a backlog fills faster than autovacuum looks at them.

PostgreSQL plans from statistics that autovacuum gathers at most once a minute. A new
installation that reads a mailbox's backlog fills ``messages`` from nothing within
seconds, and without statistics the planner takes the duplicate lookup for a scan of
the whole mailbox: every batch then reads every row recorded before it. So the poller
ANALYZEs these tables itself whenever they have doubled since the statistics it last
saw, from ``FIRST_AT`` rows on; once they are large, that stops happening and
autovacuum's thresholds take over. SQLite plans without statistics of this kind.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

FIRST_AT = 1000
# The tables the pipeline reads while it writes them (the duplicate and response lookups).
TABLES = ("messages", "responses")
# An ANALYZE waits for one already running on the table (autovacuum's, another poller's);
# that one brings the statistics anyway, so waiting longer than this gains nothing.
_LOCK_TIMEOUT = "200ms"


class PlannerStatistics:
    """Counts the rows this process records and refreshes the statistics when they are due."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._added = 0
        self._known = 0  # rows in ``messages`` at the last ANALYZE this process saw

    def recorded(self, count: int) -> None:
        """Note ``count`` messages recorded (committed); ANALYZE if the tables outgrew
        their statistics. Never raises: stale statistics cost speed, not correctness."""
        if not self.enabled or count <= 0:
            return
        with self._lock:
            self._added += count
            if self._added < max(FIRST_AT, self._known):
                return
            added, self._added = self._added, 0
            self._known = self._analyze() or self._known + added

    def _analyze(self) -> int:
        try:
            with self.engine.connect() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
                for table in TABLES:
                    connection.execute(text(f"ANALYZE {table}"))
                rows = connection.scalar(
                    text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass"))
                connection.commit()
        except DBAPIError as exc:
            log.debug("planner statistics not refreshed: %s", exc.orig)
            return 0
        return max(int(rows or 0), 0)
