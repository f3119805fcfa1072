"""/metrics, parsed with prometheus_client's own parser, against what the database holds."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from ingest.auth import TokenProviders
from ingest.config import MailboxConfig, OAuthConfig, SecurityConfig, Settings
from ingest.config.reader import Secret
from ingest.store.db import make_engine, read_session, transaction
from ingest.store.events import add_event
from ingest.store.models import Event, Message, Outcome, OutcomeStatus, Response
from ingest.timeutil import utcnow
from ingest.web.aggregates import DELIVERY_BUCKETS
from ingest.web.metrics import render_metrics
from tests.auth.certs import make_certificate
from tests.auth.conftest import APP_ID, APP_SECRET, SHARED
from tests.servers.idp import IdentityProvider
from tests.web.conftest import Filled, ServerFactory, add_checkpoint

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(answer.read().decode("utf-8"))


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def named(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def test_metrics_agree_with_the_database(engine: Engine, filled: Filled,
                                         server: ServerFactory) -> None:
    add_checkpoint(engine, "approvals", success_ago=timedelta(minutes=2), reconnects=3)
    with transaction(engine) as session:
        add_event(session, "auth.failed", detail={"mailbox": "approvals"}).mailbox = "approvals"
        first_event = session.scalars(select(Event.id).order_by(Event.id)).first()
        assert first_event is not None
        session.add(Outcome(event_id=first_event, rule="r", action="log", params={}))

    with server() as url:
        samples = scrape(url)

    with read_session(engine) as session:
        messages = session.scalars(select(Message)).all()
        intents = Counter(str(i) for i in session.scalars(select(Response.intent)))
        outbox = Counter(str(s) for s in session.scalars(select(Outcome.status)))
    expected_messages = Counter((m.mailbox, str(m.kind or ""), str(m.status)) for m in messages)
    got_messages = {
        (d["mailbox"], d["kind"], d["status"]): value
        for (name, labels), value in samples.items() if name == "ackmail_messages_total"
        for d in [dict(labels)]
    }
    assert got_messages == expected_messages and sum(expected_messages.values()) == 5
    assert named(samples, "ackmail_responses_total", "intent") == intents
    assert intents == {"approve": 2, "acknowledge": 1}  # Bob's late approval is a response too
    assert named(samples, "ackmail_auth_failures_total", "mailbox") == {"approvals": 1}
    assert named(samples, "ackmail_reconnects_total", "mailbox") == {"approvals": 3}
    assert named(samples, "ackmail_outbox_outcomes", "status") == outbox
    # Pending: this test's, and one per rule the fixture's events fired (two).
    assert outbox == {OutcomeStatus.DEAD.value: 1, OutcomeStatus.PENDING.value: 3}
    lag = named(samples, "ackmail_poll_lag_seconds", "mailbox")["approvals"]
    assert 119 <= lag <= 140
    assert samples[("ackmail_database_up", frozenset())] == 1.0
    assert named(samples, "ackmail_mailbox_healthy", "mailbox") == {"approvals": 1.0}
    assert_delivery_histogram(samples, messages)


def assert_delivery_histogram(samples: Samples, messages: Sequence[Message]) -> None:
    latencies = [(m.recorded_at - m.received_at).total_seconds() for m in messages
                 if m.received_at is not None]
    buckets = named(samples, "ackmail_delivery_to_record_seconds_bucket", "le")
    expected = {repr(bound): sum(1 for s in latencies if s <= bound) for bound in DELIVERY_BUCKETS}
    assert buckets == {**expected, "+Inf": len(latencies)}
    # The fixture delivered four messages ~3 s and one ~40 s before recording them.
    assert (expected["1.0"], expected["5.0"], expected["60.0"]) == (0, 4, 5)
    count = samples[("ackmail_delivery_to_record_seconds_count", frozenset())]
    total = samples[("ackmail_delivery_to_record_seconds_sum", frozenset())]
    assert count == len(latencies)
    assert total == pytest.approx(sum(latencies), abs=0.01)


def test_token_and_client_secret_expiry_come_from_the_token_cache(
        engine: Engine, settings: Settings, idp: IdentityProvider, tmp_path: Path) -> None:
    idp.register_client(APP_ID, secret=APP_SECRET)
    lapses = utcnow().date() + timedelta(days=20)
    mailbox = MailboxConfig(
        name="shared", protocol="imap", host="127.0.0.1", username=SHARED, auth="oauth2-app",
        oauth=OAuthConfig(tenant_id=idp.tenant, client_id=APP_ID,
                          client_secret=Secret(APP_SECRET, "test"), client_secret_expires=lapses,
                          authority=idp.base_url, ca_file=Path(idp.ca_pem)))
    key = Secret("metrics-cache-key-0123456789abcdef", "test")
    config = replace(settings, mailboxes=(*settings.mailboxes, mailbox),
                     security=SecurityConfig(cache_key=key))
    token = TokenProviders(config.state_dir, key, timeout=10.0).for_subject(mailbox).token()

    samples = parse(render_metrics(config, engine).decode("utf-8"))

    now = utcnow()
    token_left = named(samples, "ackmail_access_token_expires_in_seconds", "mailbox")
    assert token_left.keys() == {"shared"}  # the basic-auth mailbox has no token
    assert token_left["shared"] == pytest.approx((token.expires_at - now).total_seconds(), abs=30)
    assert token_left["shared"] > 60
    secret_left = named(samples, "ackmail_client_secret_expires_in_seconds", "mailbox")
    lapse = datetime.combine(lapses, time.min, tzinfo=UTC)
    assert secret_left["shared"] == pytest.approx((lapse - now).total_seconds(), abs=30)
    assert token.secret.reveal() not in render_metrics(config, engine).decode("utf-8")


def test_client_certificate_expiry_is_read_from_the_file(
        engine: Engine, settings: Settings, idp: IdentityProvider, tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, days=45, pfx=True)
    mailbox = MailboxConfig(
        name="shared", protocol="imap", host="127.0.0.1", username=SHARED, auth="oauth2-app",
        oauth=OAuthConfig(tenant_id=idp.tenant, client_id=APP_ID, certificate=cert.config,
                          authority=idp.base_url, ca_file=Path(idp.ca_pem)))
    config = replace(settings, mailboxes=(mailbox,),
                     security=SecurityConfig(cache_key=Secret("k" * 32, "test")))

    samples = parse(render_metrics(config, engine).decode("utf-8"))

    left = named(samples, "ackmail_client_certificate_expires_in_seconds", "mailbox")
    assert left["shared"] == pytest.approx((cert.not_after - utcnow()).total_seconds(), abs=30)


def test_a_database_that_is_down_is_reported_not_raised(settings: Settings,
                                                        tmp_path: Path) -> None:
    down = make_engine(f"sqlite:///{tmp_path}")
    try:
        samples = parse(render_metrics(settings, down).decode("utf-8"))
    finally:
        down.dispose()
    assert samples[("ackmail_database_up", frozenset())] == 0.0
    assert not any(name.startswith("ackmail_messages") for name, _ in samples)
