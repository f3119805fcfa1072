"""/metrics: a Prometheus collector that reads the ack database at scrape time.

Nothing is counted in this process: every value is a query (or a token cache file)
read when Prometheus asks, so the numbers survive restarts and agree with what
``ackmail stats`` and the database say. Counts that only grow are exposed as
counters, levels as gauges.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ingest.auth.status import AuthStatus, auth_status
from ingest.config import MailboxConfig, Settings
from ingest.errors import AckmailError
from ingest.store.db import read_session
from ingest.store.models import Outcome, Request, RequestStatus, Response
from ingest.timeutil import utcnow
from ingest.web import aggregates
from ingest.web.health import HealthReport, check_health

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(settings: Settings, engine: Engine) -> bytes:
    """One scrape in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(AckmailCollector(settings, engine))
    return generate_latest(registry)


class AckmailCollector(Collector):
    """Yields every ackmail metric family from the database and the token caches."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        now = utcnow()
        report = check_health(self.settings, self.engine, now=now)
        families: list[Metric] = []
        if report.database_reachable:
            try:
                with read_session(self.engine) as session:
                    families += _database_families(session, now)
            except DBAPIError as exc:
                log.warning("metrics: the database failed mid-scrape: %s", exc.orig)
                report = HealthReport(now, database_reachable=False)
        up = report.database_reachable
        yield _gauge("ackmail_database_up", "1 when the database answers.", up)
        if report.database_reachable:
            yield from _folder_families(report, now)
            yield from families
        yield from _token_families(self.settings, now)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _database_families(session: Session, now: datetime) -> list[Metric]:
    messages = CounterMetricFamily(
        "ackmail_messages", "Messages recorded.", labels=("mailbox", "kind", "status")
    )
    for mailbox, kind, status, count in aggregates.messages_by_mailbox_kind_status(session):
        messages.add_metric((mailbox, kind, status), count)
    return [
        messages,
        _labelled(
            CounterMetricFamily("ackmail_responses", "Decisions recorded.", labels=("intent",)),
            aggregates.count_by(session, Response.intent),
        ),
        _labelled(
            CounterMetricFamily(
                "ackmail_auth_failures", "Sign-in failure episodes.", labels=("mailbox",)
            ),
            aggregates.auth_failures_by_mailbox(session),
        ),
        _labelled(
            GaugeMetricFamily("ackmail_outbox_outcomes", "Outcomes by status.", labels=("status",)),
            aggregates.count_by(session, Outcome.status),
        ),
        _labelled(
            GaugeMetricFamily("ackmail_requests", "Requests by status.", labels=("status",)),
            aggregates.count_by(session, Request.status),
        ),
        _oldest_pending(session, now),
        _delivery_histogram(session),
    ]


def _labelled(family: GaugeMetricFamily | CounterMetricFamily,
              values: dict[str, int]) -> Metric:
    for label, value in sorted(values.items()):
        family.add_metric((label,), value)
    return family


def _oldest_pending(session: Session, now: datetime) -> Metric:
    oldest = session.scalar(
        select(func.min(Request.created_at)).where(Request.status == RequestStatus.PENDING)
    )
    age = (now - oldest).total_seconds() if oldest else 0.0
    return _gauge(
        "ackmail_oldest_pending_request_age_seconds",
        "Age of the oldest pending request (0 when none is pending).",
        max(0.0, age),
    )


def _delivery_histogram(session: Session) -> Metric:
    buckets = aggregates.delivery_latency(session)
    points = [
        (_bound(le), count) for le, count in zip(buckets.bounds, buckets.cumulative, strict=True)
    ]
    return HistogramMetricFamily(
        "ackmail_delivery_to_record_seconds",
        "Seconds from a message's delivery to its record in the database.",
        buckets=[*points, ("+Inf", buckets.count)],
        sum_value=buckets.total,
    )


def _bound(value: float) -> str:
    return repr(float(value))


def _folder_families(report: HealthReport, now: datetime) -> Iterator[Metric]:
    labels = ("mailbox", "folder")
    lag = GaugeMetricFamily(
        "ackmail_poll_lag_seconds", "Seconds since the last successful poll.", labels=labels
    )
    reconnects = CounterMetricFamily(
        "ackmail_reconnects", "Reconnections the poller made.", labels=labels
    )
    healthy = GaugeMetricFamily(
        "ackmail_mailbox_healthy", "1 when the folder is being read (see /healthz).", labels=labels
    )
    for folder in report.folders:
        key = (folder.mailbox, folder.folder)
        if folder.last_success_at is not None:
            lag.add_metric(key, max(0.0, (now - folder.last_success_at).total_seconds()))
        reconnects.add_metric(key, folder.reconnects)
        healthy.add_metric(key, 1.0 if folder.healthy else 0.0)
    yield from (lag, reconnects, healthy)


def _token_families(settings: Settings, now: datetime) -> Iterator[Metric]:
    token = GaugeMetricFamily(
        "ackmail_access_token_expires_in_seconds",
        "Seconds until the cached access token lapses (negative: lapsed).",
        labels=("mailbox",),
    )
    secret = GaugeMetricFamily(
        "ackmail_client_secret_expires_in_seconds",
        "Seconds until the app's client secret lapses (start of client_secret_expires, UTC).",
        labels=("mailbox",),
    )
    certificate = GaugeMetricFamily(
        "ackmail_client_certificate_expires_in_seconds",
        "Seconds until the app's client certificate lapses (its notAfter).",
        labels=("mailbox",),
    )
    for box in settings.mailboxes:
        status = _status(settings, box, now) if box.auth.startswith("oauth2") else None
        if status is None:
            continue
        if status.access_token_expires is not None:
            token.add_metric((box.name,), (status.access_token_expires - now).total_seconds())
        if status.client_secret_expires is not None:
            lapse = datetime.combine(status.client_secret_expires, time.min, tzinfo=UTC)
            secret.add_metric((box.name,), (lapse - now).total_seconds())
        if status.certificate_expires is not None:
            certificate.add_metric((box.name,), (status.certificate_expires - now).total_seconds())
    yield from (token, secret, certificate)


def _status(settings: Settings, box: MailboxConfig, now: datetime) -> AuthStatus | None:
    try:
        return auth_status(
            box, state_dir=settings.state_dir, cache_key=settings.security.cache_key, now=now
        )
    except AckmailError as exc:
        log.warning("metrics: no auth status for mailbox '%s': %s", box.name, exc)
        return None
