"""The read side: filters, globs, paging and stats over real rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from ingest.parse.base import Intent
from ingest.store import queries
from ingest.store.db import read_session, transaction
from ingest.store.models import MessageStatus, RequestStatus
from ingest.timeutil import utcnow
from tests.factories import add_message, add_request, add_response


def test_requests_filter_by_status_and_ref_glob(engine: Engine) -> None:
    with transaction(engine) as session:
        add_request(session, ref="CR-100", responders=("a@example.test",))
        add_request(session, ref="CR_200", status=RequestStatus.APPROVED)
        add_request(session, ref="INC-7")
    with read_session(engine) as session:
        assert [r["ref"] for r in queries.list_requests(session, ref="CR-*")] == ["CR-100"]
        assert [r["ref"] for r in queries.list_requests(session, ref="CR_*")] == ["CR_200"]
        pending = queries.list_requests(session, status="pending")
        assert sorted(r["ref"] for r in pending) == ["CR-100", "INC-7"]
        assert {r["ref"]: r["responders"] for r in pending} == {"CR-100": 1, "INC-7": 0}


def test_requests_are_newest_first_and_paged(engine: Engine) -> None:
    now = utcnow()
    with transaction(engine) as session:
        for n in range(5):
            add_request(session, ref=f"R-{n}", created_at=now - timedelta(minutes=n))
    with read_session(engine) as session:
        first = queries.list_requests(session, page=queries.Page(limit=2))
        second = queries.list_requests(session, page=queries.Page(limit=2, offset=2))
    assert [r["ref"] for r in first] == ["R-0", "R-1"]
    assert [r["ref"] for r in second] == ["R-2", "R-3"]


def test_responses_since_and_intent(engine: Engine) -> None:
    now = utcnow()
    with transaction(engine) as session:
        request = add_request(session, ref="CR-9")
        add_response(session, request, intent=Intent.APPROVE, received_at=now - timedelta(hours=2))
        add_response(
            session,
            request,
            intent=Intent.REJECT,
            received_at=now - timedelta(days=3),
            decisive=False,
        )
    with read_session(engine) as session:
        recent = queries.list_responses(session, since=now - timedelta(hours=24))
        rejects = queries.list_responses(session, intent="reject")
        by_request = queries.list_responses(session, request_id=request.id)
    assert [(r["ref"], r["intent"]) for r in recent] == [("CR-9", Intent.APPROVE)]
    assert [r["decisive"] for r in rejects] == [False]
    assert len(by_request) == 2


def test_messages_filter_and_stats(engine: Engine) -> None:
    with transaction(engine) as session:
        add_message(session, mailbox="approvals", status=MessageStatus.PROCESSED)
        add_message(session, mailbox="approvals", status=MessageStatus.IGNORED, reason="bounce")
        add_message(session, mailbox="alerts", status=MessageStatus.QUARANTINED, reason="too big")
        add_request(session, ref="OLD", created_at=utcnow() - timedelta(days=2))
    with read_session(engine) as session:
        ignored = queries.list_messages(session, status="ignored")
        alerts = queries.list_messages(session, mailbox="alerts")
        report = queries.stats(session)
    assert [m["reason"] for m in ignored] == ["bounce"]
    assert [m["status"] for m in alerts] == [MessageStatus.QUARANTINED]
    counts = {(m["mailbox"], m["status"]): m["count"] for m in report["messages"]}
    assert counts == {
        ("alerts", "quarantined"): 1,
        ("approvals", "ignored"): 1,
        ("approvals", "processed"): 1,
    }
    assert report["requests"] == {"pending": 1}
    assert report["oldest_pending_request_at"] < utcnow() - timedelta(days=1)
    assert report["outbox"] == {"pending": 0, "sending": 0, "delivered": 0, "dead": 0}


def test_glob_to_like_escapes_like_wildcards() -> None:
    assert queries.glob_to_like("CR-*") == "CR-%"
    assert queries.glob_to_like("A_B%?") == "A\\_B\\%_"
