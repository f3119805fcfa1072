"""What the mailbox benchmarks share: fresh databases, the backlogs they drain, peak memory.

A backlog is ``count`` ~2.5 KB replies of one ``Workload``: the mix (a fifth answer a
request each, the rest answer nothing) or a matched backlog (every message answers one of
``requests`` requests, spread round robin, so each request gets ``count / requests``).
"""

from __future__ import annotations

import os
import resource
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from ingest.config import RequestsConfig
from ingest.register import NewRequest, register_request
from ingest.store.db import make_engine, transaction
from ingest.store.migrate import upgrade
from ingest.store.models import RequestKind
from tests.servers.postgres_fixtures import PG_ADMIN_URL
from tests.sources.mail import ALICE, SECRET, reply, unrelated

DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Workload:
    """A backlog's shape: the share of messages that answer a request, and how many
    requests they answer (None: each its own)."""

    name: str
    matched: float
    requests: int | None = None

    @classmethod
    def parse(cls, text: str) -> Workload:
        """``mix`` (a fifth matched, each its own request) or ``matched:R`` (all over R)."""
        if text == "mix":
            return cls("mix 20 %", 0.2)
        kind, _, requests = text.partition(":")
        if kind != "matched" or not requests.isdigit() or int(requests) < 1:
            raise ValueError(f"workload {text!r}: write mix or matched:<requests>, "
                             "e.g. matched:20")
        return cls(f"matched/{requests}", 1.0, int(requests))


@dataclass(frozen=True)
class Run:
    """One measured run: messages, seconds, and the process's peak RSS."""

    messages: int
    seconds: float
    maxrss_kb: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


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


class Databases:
    """Fresh SQLite files and PostgreSQL databases, dropped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def fresh(self, dialect: str, *, migrate: bool = True) -> str:
        """A new empty database's URL, at the migrations' head unless ``migrate`` is off."""
        name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if dialect == "sqlite":
            url = f"sqlite:///{self.workdir / (name + '.db')}"
        else:
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        if migrate:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        return url

    def drop(self, url: str) -> None:
        """Remove one database made by ``fresh``."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            Path(str(parsed.database)).unlink(missing_ok=True)
            return
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        self.created.remove(str(parsed.database))

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def register_tokens(db_url: str, count: int) -> list[str]:
    """``count`` pending requests (one responder each), in one transaction: their tokens."""
    engine = make_engine(db_url)
    try:
        with transaction(engine) as session:
            return [register_request(
                session, NewRequest(RequestKind.APPROVAL, f"BENCH-{n}", (ALICE,), "Deploy",
                                    timedelta(days=1)),
                secret=SECRET, config=RequestsConfig()).recipients[0].token
                for n in range(count)]
    finally:
        engine.dispose()


def make_messages(db_url: str, count: int, matched: float,
                  requests: int | None = None) -> list[bytes]:
    """Register requests in the database and return ``count`` messages, ``matched`` of
    them answering one (those come first): each its own request, or round robin over
    ``requests`` requests."""
    answering = int(count * matched)
    tokens = register_tokens(db_url, answering if requests is None else requests)
    replies = [reply(tokens[n % len(tokens)]) for n in range(answering)] if tokens else []
    return replies + [unrelated("bench ") for _ in range(count - answering)]


def backlog(db_url: str, count: int, workload: Workload) -> list[bytes]:
    """The messages of ``workload``, its requests registered in the database."""
    return make_messages(db_url, count, workload.matched, workload.requests)
