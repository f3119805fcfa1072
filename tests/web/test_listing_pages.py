"""The list pages over HTTP: filters, paging, and one clear error page per bad request."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from ingest.store.db import transaction
from ingest.store.models import MessageStatus, RequestStatus
from ingest.timeutil import utcnow
from tests.factories import add_message, add_request
from tests.web.conftest import ServerFactory

ROW_ID = re.compile(r'<td><a href="/(?:requests|messages)/(\d+)">')


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8")


def ids(page: str) -> list[int]:
    """Row ids in page order (a request row links its id and its ref)."""
    return [int(n) for n in dict.fromkeys(ROW_ID.findall(page))]


@pytest.fixture
def many(engine: Engine) -> dict[str, list[int]]:
    """120 requests, newest last: CR-n pending or approved, OPS-n expired."""
    start = utcnow() - timedelta(days=1)
    made: dict[str, list[int]] = {"pending": [], "approved": [], "expired": []}
    with transaction(engine) as session:
        for n in range(120):
            status, ref = ((RequestStatus.EXPIRED, f"OPS-{n}") if n % 3 == 0 else
                           (RequestStatus.APPROVED if n % 3 == 1 else RequestStatus.PENDING,
                            f"CR-{n}"))
            request = add_request(session, ref=ref, status=status,
                                  created_at=start + timedelta(minutes=n))
            made[status.value].append(request.id)
    return made


def test_requests_are_newest_first_in_pages_of_fifty(many: dict[str, list[int]],
                                                     server: ServerFactory) -> None:
    every = sorted((i for group in many.values() for i in group), reverse=True)
    with server() as url:
        pages = [get(f"{url}/requests?page={n}") for n in (1, 2, 3)]
    assert [ids(body) for _, body in pages] == [every[:50], every[50:100], every[100:]]
    assert 'rel="next"' in pages[0][1] and 'rel="next"' not in pages[2][1]
    assert 'href="/requests?page=1"' in pages[1][1]


def test_status_and_ref_filters_combine(many: dict[str, list[int]],
                                        server: ServerFactory) -> None:
    with server() as url:
        _, pending = get(f"{url}/requests?status=pending")
        _, crs = get(f"{url}/requests?ref=CR-1*&status=approved")
        _, none = get(f"{url}/requests?ref=NOPE-*")
    assert ids(pending) == sorted(many["pending"], reverse=True)[:50]
    approved_cr1 = {i for i, n in zip(many["approved"], range(1, 120, 3), strict=True)
                    if str(n).startswith("1")}
    assert set(ids(crs)) == approved_cr1 and approved_cr1
    assert '<option value="approved" selected>' in crs
    assert ids(none) == [] and "No request matches." in none


def test_message_tabs_filter_by_status(engine: Engine, server: ServerFactory) -> None:
    with transaction(engine) as session:
        ignored = add_message(session, status=MessageStatus.IGNORED, reason="auto reply").id
        quarantined = add_message(session, status=MessageStatus.QUARANTINED, reason="bad").id
        processed = add_message(session).id
    with server() as url:
        tabs = {tab: ids(get(f"{url}/messages?status={tab}")[1])
                for tab in ("ignored", "quarantined", "processed", "all")}
        default = ids(get(f"{url}/messages")[1])
    assert tabs == {"ignored": [ignored], "quarantined": [quarantined], "processed": [processed],
                    "all": [processed, quarantined, ignored]}
    assert default == [ignored]


BAD_REQUESTS = (
    ("/requests?status=bogus", 400, "status must be one of pending, approved"),
    ("/requests?page=0", 400, "page must be a number from 1 to"),
    ("/requests?page=abc", 400, "page must be a number"),
    ("/requests?ref=" + "x" * 201, 400, "ref is longer than 200 characters"),
    ("/messages?status=deleted", 400, "status must be one of ignored, quarantined"),
    ("/requests/999999", 404, "there is no request #999999"),
    ("/messages/999999", 404, "there is no message #999999"),
    ("/requests/99999999999999999999", 404, "there is no page at"),
    ("/nothing", 404, "there is no page at /nothing"),
)


def test_bad_requests_get_one_sentence(engine: Engine, server: ServerFactory) -> None:
    with server() as url:
        answers = {path: get(f"{url}{path}") for path, _, _ in BAD_REQUESTS}
    for path, status, says in BAD_REQUESTS:
        code, body = answers[path]
        assert code == status and says in body, path
        assert "Traceback" not in body
