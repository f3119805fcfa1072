"""The lease SQL on PostgreSQL: claim with SKIP LOCKED, renew, take over, release, count.

Leases are PostgreSQL's (SQLite runs one poller:
``test_poll.test_sqlite_takes_one_poller_and_says_so``); the pollers that use them are
tested in ``test_poll_keeper``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update

from ingest.config import load_settings
from ingest.errors import ConfigError
from ingest.store import queries
from ingest.store.checkpoints import Checkpoints
from ingest.store.db import read_session, transaction
from ingest.store.leases import Claimed, LeaseBook
from ingest.store.models import Lease, PollerProcess
from tests.servers.postgres_fixtures import on_postgresql

KEYS = [(f"box{n}", f"in{n}") for n in range(1, 5)]
LEASE = 2  # seconds: heartbeats every 2/3 s


def _book(engine: Engine, name: str, keys: list[tuple[str, str]] = KEYS, **options: bool,
          ) -> LeaseBook:
    return LeaseBook(engine, keys, LEASE, holder=f"test:{name}", **options)


def holders(engine: Engine) -> dict[str, str]:
    """mailbox -> live holder."""
    with read_session(engine) as session:
        rows = session.execute(select(Lease.mailbox, Lease.holder).where(
            Lease.holder.is_not(None), Lease.expires_at > func.now()))
        return {mailbox: str(holder) for mailbox, holder in rows}


def held_by(engine: Engine, holder: str) -> set[str]:
    return {box for box, who in holders(engine).items() if who == holder}


def set_lease(engine: Engine, mailbox: str, **values: object) -> None:
    with transaction(engine) as session:
        session.execute(update(Lease).where(Lease.mailbox == mailbox).values(**values)
                        .execution_options(synchronize_session=False))


@pytest.mark.postgres
@on_postgresql
def test_claims_stop_at_the_limit_and_skip_rows_another_claimer_has_locked(
        engine: Engine) -> None:
    first, second = _book(engine, "first"), _book(engine, "second")
    assert (first.heartbeat(), second.heartbeat(), first.heartbeat()) == (1, 2, 2)

    assert [c.key for c in first.claim(2)] == KEYS[:2]
    with engine.connect() as other, other.begin():  # a claimer in the middle of its claim
        other.execute(text("SELECT 1 FROM leases WHERE mailbox = 'box3' FOR UPDATE"))
        assert second.claim(4) == [Claimed(KEYS[3])]
    assert second.claim(4) == [Claimed(KEYS[2])]
    assert second.claim(4) == []
    assert holders(engine) == {"box1": "test:first", "box2": "test:first",
                                "box3": "test:second", "box4": "test:second"}


@pytest.mark.postgres
@on_postgresql
def test_renewal_keeps_what_is_still_held_and_tells_what_was_lost(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    book = _book(engine, "first")
    book.heartbeat()
    book.claim(4)
    with read_session(engine) as session:
        before = session.scalar(select(Lease.expires_at).where(Lease.mailbox == "box1"))
    set_lease(engine, "box2", holder="test:thief")

    assert book.renew(KEYS) == set(KEYS) - {KEYS[1]}

    with read_session(engine) as session:
        after = session.scalar(select(Lease.expires_at).where(Lease.mailbox == "box1"))
    assert before is not None and after is not None and after > before
    assert "mailbox 'box2': lease lost to another poller" in caplog.text
    assert holders(engine)["box2"] == "test:thief"


@pytest.mark.postgres
@on_postgresql
def test_an_expired_lease_is_taken_over_and_the_log_says_how_long_its_holder_was_silent(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    dead, alive = _book(engine, "dead"), _book(engine, "alive")
    dead.heartbeat()
    dead.claim(1)
    assert alive.claim(1) == [Claimed(KEYS[1])]  # box1 is held and not expired yet
    set_lease(engine, "box1", heartbeat_at=func.now() - timedelta(seconds=7),
               expires_at=func.now() - timedelta(seconds=1))

    [claim] = alive.claim(1)

    assert (claim.key, claim.previous) == (KEYS[0], "test:dead")
    assert 7 <= claim.silent_seconds < 60
    assert re.search(r"mailbox 'box1': lease taken over by test:alive from poller test:dead, "
                     r"silent for \d+\.\d s", caplog.text)
    assert dead.renew([KEYS[0]]) == set()


@pytest.mark.postgres
@on_postgresql
def test_release_frees_a_lease_and_unregister_forgets_the_poller(engine: Engine) -> None:
    first, second = _book(engine, "first"), _book(engine, "second")
    first.heartbeat()
    first.claim(3)

    first.release([KEYS[0]], "fair share is 2 of 4")

    assert second.claim(4) == [Claimed(KEYS[0]), Claimed(KEYS[3])]
    first.unregister()
    assert set(holders(engine).values()) == {"test:second"}
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PollerProcess)) == 0


@pytest.mark.postgres
@on_postgresql
def test_only_live_pollers_of_the_same_folders_share_them(engine: Engine) -> None:
    first, second = _book(engine, "first"), _book(engine, "second")
    fewer = _book(engine, "fewer", KEYS[:1])
    passing = _book(engine, "passing", register=False)  # poll --once
    for book in (first, second, fewer, passing):
        book.heartbeat()

    assert (first.heartbeat(), fewer.heartbeat(), passing.heartbeat()) == (2, 1, 2)
    with transaction(engine) as session:  # the second stopped heartbeating a while ago
        session.execute(update(PollerProcess).where(PollerProcess.holder == "test:second")
                        .values(expires_at=func.now() - timedelta(seconds=1)))
    assert first.heartbeat() == 1
    with read_session(engine) as session:
        assert "test:second" not in session.scalars(select(PollerProcess.holder)).all()


@pytest.mark.postgres
@on_postgresql
def test_stats_name_the_live_holder_of_each_mailbox(engine: Engine) -> None:
    for mailbox, folder in KEYS[:2]:
        Checkpoints(engine, mailbox, folder).load()
    book = _book(engine, "first")
    book.heartbeat()
    book.claim(2)
    set_lease(engine, "box2", expires_at=func.now() - timedelta(seconds=1))

    with read_session(engine) as session:
        report = queries.stats(session)

    assert [(row["mailbox"], row["holder"]) for row in report["mailboxes"]] == [
        ("box1", "test:first"), ("box2", None)]


def test_lease_seconds_is_read_from_the_service_table(tmp_path: Path) -> None:
    path = tmp_path / "ackmail.toml"
    assert load_settings(path, require_file=False).lease_seconds == 30
    path.write_text("[service]\nlease_seconds = 5\n")
    assert load_settings(path).lease_seconds == 5
    for bad, problem in (("0", "must be between 1 and 3600, not 0"),
                         ('"30s"', "must be a whole number")):
        path.write_text(f"[service]\nlease_seconds = {bad}\n")
        with pytest.raises(ConfigError, match=f"{path}: \\[service\\] key 'lease_seconds' "
                                              f"{problem}"):
            load_settings(path)
