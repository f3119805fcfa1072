"""Every URL the ops server answers, as one table, and the handler behind each.

Handlers only read: each opens a read session, asks ``ingest.store.queries`` (or the
timeline, aggregates, health), and renders a template inside that session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from importlib.resources import files

from sqlalchemy import select

from ingest.auth.status import AuthStatus, auth_status
from ingest.config import MailboxConfig
from ingest.errors import AckmailError
from ingest.parse.base import Intent
from ingest.store import queries
from ingest.store.db import read_session
from ingest.store.models import Message, MessageStatus, RequestKind, RequestStatus, Response
from ingest.web import aggregates
from ingest.web.charts import BarChart, Series, render_chart
from ingest.web.health import check_health
from ingest.web.http import (
    HttpProblem,
    WebRequest,
    WebResponse,
    json_response,
)
from ingest.web.metrics import CONTENT_TYPE, render_metrics
from ingest.web.site import Site, span
from ingest.web.timeline import load_timeline

PAGE_SIZE = 50
MAX_PAGE = 100_000
CHART_DAYS = 30
MESSAGE_TABS = ("ignored", "quarantined", "processed", "all")
DECISION_BUCKET_LABELS = (
    *(f"≤{span(bound)}" for bound in aggregates.DECISION_BUCKETS),
    f">{span(aggregates.DECISION_BUCKETS[-1])}",
)

Handler = Callable[[Site, WebRequest, "re.Match[str]"], WebResponse]


@dataclass(frozen=True)
class Route:
    """A path pattern (matched whole) and its handler; ``public`` routes need no token."""

    pattern: re.Pattern[str]
    handler: Handler
    public: bool = False


def find_route(path: str) -> tuple[Route, re.Match[str]] | None:
    """The route whose pattern matches all of ``path``."""
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route, match
    return None


def _page_number(request: WebRequest) -> int:
    text = request.arg("page", "1") or "1"
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise HttpProblem(HTTPStatus.BAD_REQUEST, f"page must be a number from 1 to {MAX_PAGE}")
    return int(text)


def _choice(request: WebRequest, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.arg(name)
    if value is not None and value not in allowed:
        raise HttpProblem(
            HTTPStatus.BAD_REQUEST, f"{name} must be one of {', '.join(allowed)}, not '{value}'"
        )
    return value


def _values(enum_class: type[RequestStatus] | type[MessageStatus]) -> tuple[str, ...]:
    return tuple(member.value for member in enum_class)


def healthz(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    report = check_health(site.settings, site.engine)
    status = HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE
    return json_response(report.as_json(), status)


def metrics(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    return WebResponse(HTTPStatus.OK, render_metrics(site.settings, site.engine), CONTENT_TYPE)


def stylesheet(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    css = files("ingest.web").joinpath("static/ackmail.css").read_bytes()
    return WebResponse(HTTPStatus.OK, css, "text/css; charset=utf-8")


def overview(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    with read_session(site.engine) as session:
        per_day = aggregates.decisions_per_day(session, CHART_DAYS)
        to_decision = aggregates.time_to_decision(session)
        return site.page(
            "overview.html",
            stats=queries.stats(session),
            decisions_chart=render_chart(_decisions_chart(per_day)),
            decision_time_chart=render_chart(_decision_time_chart(to_decision)),
        )


def _decisions_chart(per_day: dict[str, dict[str, int]]) -> BarChart:
    intents = [intent.value for intent in Intent]
    return BarChart(
        chart_id="decisions-per-day",
        title=f"Responses per day by intent, last {CHART_DAYS} days (UTC)",
        categories=tuple(day[5:] for day in per_day),
        series=tuple(
            Series(intent, tuple(counts.get(intent, 0) for counts in per_day.values()))
            for intent in intents
        ),
        stacked=True,
        y_label="responses",
    )


def _decision_time_chart(per_kind: dict[str, aggregates.Buckets]) -> BarChart:
    empty = (0,) * len(DECISION_BUCKET_LABELS)
    return BarChart(
        chart_id="time-to-decision",
        title="Time from request to decision, by kind",
        categories=DECISION_BUCKET_LABELS,
        series=tuple(
            Series(kind.value, per_kind[kind].per_bucket() if kind in per_kind else empty)
            for kind in RequestKind
        ),
        y_label="requests",
    )


def requests_page(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    status = _choice(request, "status", _values(RequestStatus))
    ref = request.arg("ref")
    if ref is not None and len(ref) > 200:
        raise HttpProblem(HTTPStatus.BAD_REQUEST, "ref is longer than 200 characters")
    number = _page_number(request)
    page = queries.Page(limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    with read_session(site.engine) as session:
        rows = queries.list_requests(session, status=status, ref=ref, page=page)
    return site.page(
        "requests.html",
        rows=rows[:PAGE_SIZE],
        statuses=_values(RequestStatus),
        filters={"status": status, "ref": ref},
        number=number,
        has_next=len(rows) > PAGE_SIZE,
    )


def _id(match: re.Match[str], what: str) -> int:
    value = int(match["id"])
    if value > 2**63 - 1:
        raise HttpProblem(HTTPStatus.NOT_FOUND, f"there is no {what} #{value}")
    return value


def request_page(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    request_id = _id(match, "request")
    with read_session(site.engine) as session:
        timeline = load_timeline(session, request_id)
        if timeline is None:
            raise HttpProblem(HTTPStatus.NOT_FOUND, f"there is no request #{request_id}")
        return site.page("request.html", timeline=timeline)


def messages_page(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    tab = _choice(request, "status", MESSAGE_TABS) or MESSAGE_TABS[0]
    mailbox = request.arg("mailbox")
    number = _page_number(request)
    page = queries.Page(limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    with read_session(site.engine) as session:
        rows = queries.list_messages(
            session, status=None if tab == "all" else tab, mailbox=mailbox, page=page
        )
    return site.page(
        "messages.html",
        rows=rows[:PAGE_SIZE],
        tabs=MESSAGE_TABS,
        filters={"status": tab, "mailbox": mailbox},
        number=number,
        has_next=len(rows) > PAGE_SIZE,
    )


def message_page(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    message_id = _id(match, "message")
    with read_session(site.engine) as session:
        message = session.get(Message, message_id)
        if message is None:
            raise HttpProblem(HTTPStatus.NOT_FOUND, f"there is no message #{message_id}")
        response = session.scalars(
            select(Response).where(Response.message_id == message_id)
        ).first()
        return site.page("message.html", message=message, response=response)


def mailboxes_page(site: Site, request: WebRequest, match: re.Match[str]) -> WebResponse:
    report = check_health(site.settings, site.engine)
    with read_session(site.engine) as session:
        counts = queries.stats(session)["messages"]
    return site.page(
        "mailboxes.html",
        report=report,
        counts=counts,
        auth=[status for status in map(partial(_auth, site), site.settings.mailboxes) if status],
    )


def _auth(site: Site, box: MailboxConfig) -> AuthStatus | None:
    """A mailbox's sign-in state; None for one with nothing to sign in (Maildir)."""
    if box.protocol == "maildir":
        return None
    try:
        return auth_status(box, state_dir=site.settings.state_dir,
                           cache_key=site.settings.security.cache_key)
    except AckmailError:
        return None


# Order matters only for readability: patterns are matched whole, so none overlap.
ROUTES: tuple[Route, ...] = (
    Route(re.compile(r"/healthz"), healthz, public=True),  # probes carry no token
    Route(re.compile(r"/metrics"), metrics),
    Route(re.compile(r"/static/ackmail\.css"), stylesheet),
    Route(re.compile(r"/"), overview),
    Route(re.compile(r"/requests"), requests_page),
    Route(re.compile(r"/requests/(?P<id>[0-9]{1,19})"), request_page),
    Route(re.compile(r"/messages"), messages_page),
    Route(re.compile(r"/messages/(?P<id>[0-9]{1,19})"), message_page),
    Route(re.compile(r"/mailboxes"), mailboxes_page),
)
