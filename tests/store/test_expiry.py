"""The expiry sweep on both databases: status, decided_at and one request.expired event each."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from ingest.store.db import make_engine, read_session, transaction
from ingest.store.expiry import expire_requests
from ingest.store.models import Event, Request, RequestStatus
from ingest.timeutil import utcnow
from tests.factories import add_request


def _request(engine: Engine, ref: str, expires_in: timedelta | None,
             status: RequestStatus = RequestStatus.PENDING) -> int:
    with transaction(engine) as session:
        request = add_request(session, ref=ref, status=status)
        request.expires_at = utcnow() + expires_in if expires_in is not None else None
        session.flush()
        return request.id


def _state(engine: Engine) -> tuple[dict[str, RequestStatus], list[Event]]:
    with read_session(engine) as session:
        statuses = {r.ref: r.status for r in session.scalars(select(Request))}
        return statuses, list(session.scalars(select(Event).order_by(Event.id)))


def test_overdue_pending_requests_expire_with_an_event(engine: Engine) -> None:
    overdue = _request(engine, "CR-late", timedelta(minutes=-5))
    _request(engine, "CR-open", timedelta(hours=1))
    _request(engine, "CR-forever", None)
    _request(engine, "CR-done", timedelta(minutes=-5), RequestStatus.APPROVED)

    assert expire_requests(engine) == 1
    assert expire_requests(engine) == 0

    statuses, events = _state(engine)
    assert statuses == {"CR-late": RequestStatus.EXPIRED, "CR-open": RequestStatus.PENDING,
                        "CR-forever": RequestStatus.PENDING, "CR-done": RequestStatus.APPROVED}
    [event] = events
    assert (event.type, event.request_id, event.processed_at) == ("request.expired", overdue, None)
    assert event.payload["event"] == "request.expired"
    assert event.payload["request"]["ref"] == "CR-late"
    assert event.payload["request"]["status"] == "expired"
    with read_session(engine) as session:
        request = session.get(Request, overdue)
        assert request is not None and request.decided_at == request.expires_at


def test_the_sweep_takes_a_time_and_a_batch_limit(engine: Engine) -> None:
    for n in range(3):
        _request(engine, f"CR-{n}", timedelta(hours=1))
    assert expire_requests(engine) == 0
    later = utcnow() + timedelta(hours=2)
    assert expire_requests(engine, now=later, limit=2) == 2
    assert expire_requests(engine, now=later) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_sweeps_expire_each_request_once(db_url: str, engine: Engine) -> None:
    for n in range(30):
        _request(engine, f"CR-{n}", timedelta(minutes=-1))
    other = make_engine(db_url)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def sweep(target: Engine) -> None:
        barrier.wait()
        total = 0
        while batch := expire_requests(target, limit=4):
            total += batch
        counts.append(total)

    threads = [threading.Thread(target=sweep, args=(e,)) for e in (engine, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other.dispose()

    statuses, events = _state(engine)
    assert sum(counts) == 30 and set(statuses.values()) == {RequestStatus.EXPIRED}
    assert sorted(e.request_id or 0 for e in events) == sorted({e.request_id or 0 for e in events})
    assert len(events) == 30
