"""The expiry sweep: pending requests past ``expires_at`` become expired, with an event each.

All of one sweep commits in one transaction: the status changes and their
``request.expired`` events together. Each change is a conditional UPDATE
(``status = 'pending'``), so a reply that decides the request at the same moment,
or a second sweeper, never gets its decision overwritten or the event doubled.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update

from ingest.store.db import transaction
from ingest.store.events import add_event
from ingest.store.models import Request, RequestStatus
from ingest.timeutil import utcnow

log = logging.getLogger(__name__)
DEFAULT_BATCH = 500


def expire_requests(engine: Engine, *, now: datetime | None = None,
                    limit: int = DEFAULT_BATCH) -> int:
    """Expire up to ``limit`` overdue pending requests; returns how many were expired."""
    moment = now or utcnow()
    query = (
        select(Request)
        .where(Request.status == RequestStatus.PENDING, Request.expires_at <= moment)
        .order_by(Request.expires_at, Request.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = 0
    with transaction(engine) as session:
        for request in session.scalars(query).all():
            changed = cast(CursorResult[Any], session.execute(
                update(Request)
                .where(Request.id == request.id, Request.status == RequestStatus.PENDING)
                .values(status=RequestStatus.EXPIRED, decided_at=request.expires_at)
                .execution_options(synchronize_session=False)
            ))
            if changed.rowcount != 1:
                continue
            session.refresh(request)
            add_event(session, "request.expired", request=request)
            expired += 1
    if expired:
        log.info("expired %d request(s) past their deadline", expired)
    return expired
