"""The outbox end to end with a real webhook receiver: retries, dead letters, crashes, races."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ingest.store.db import make_engine, read_session
from ingest.store.models import Event, Outcome, OutcomeStatus
from ingest.timeutil import utcnow
from rules.actions.registry import ActionRegistry
from rules.base import Delivery
from rules.dispatch import Backoff, DispatchConfig, Dispatcher
from rules.engine import process_events
from rules.loader import RuleSet
from rules.outbox import claim_due, retry_outcome
from tests.rules.conftest import AddEvent, MakeRules
from tests.servers.http_receiver import CLOSE, HANG, HttpReceiver
from tests.servers.rules_fixtures import WEBHOOK_SECRET

NO_WAIT = Backoff(base=timedelta(0), cap=timedelta(0))


@pytest.fixture
def hook_rules(make_rules: MakeRules, http_receiver: HttpReceiver,
               monkeypatch: pytest.MonkeyPatch) -> RuleSet:
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    return make_rules(f"""
[[rule]]
name = "hook"
on = ["request.approved"]
[[rule.action]]
type = "webhook"
url = "{http_receiver.url}/hooks/ackmail?token=abc"
secret = {{ env = "HOOK_SECRET" }}
timeout = 0.5
max_attempts = 4
""")


def _dispatcher(engine: Engine, rules: RuleSet, registry: ActionRegistry,
                **config: Any) -> Dispatcher:
    return Dispatcher(engine, rules, registry, DispatchConfig(**({"backoff": NO_WAIT} | config)))


def _outcomes(engine: Engine) -> list[Outcome]:
    with read_session(engine) as session:
        return list(session.scalars(select(Outcome).order_by(Outcome.id)))


def test_a_webhook_is_signed_keyed_and_delivered_once(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    event_id = add_decision(ref="CR-20631")

    tally = _dispatcher(engine, hook_rules, registry).run_once()

    assert (tally.events, tally.delivered, tally.retrying, tally.dead) == (1, 1, 0, 0)
    [outcome] = _outcomes(engine)
    [request] = http_receiver.received
    assert request.signature_ok is True
    assert request.idempotency_key == str(outcome.id)
    assert request.headers["x-ackmail-event"] == "request.approved"
    assert request.path == "/hooks/ackmail?token=abc"
    with read_session(engine) as session:
        stored = session.get(Event, event_id)
        assert stored is not None and request.json() == stored.payload
    assert request.json()["request"]["ref"] == "CR-20631"
    assert (outcome.status, outcome.attempts, outcome.last_error) == (
        OutcomeStatus.DELIVERED, 1, None)
    assert outcome.params["result"] == {"status": 200} and outcome.delivered_at is not None
    assert outcome.params["secret"] == {"env": "HOOK_SECRET"}  # the reference, never the value
    assert WEBHOOK_SECRET not in json.dumps(outcome.params)
    assert outcome.claimed_by is None and outcome.claimed_until is None


def test_failures_are_retried_with_the_same_key_until_delivered(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    add_decision()
    http_receiver.answer_next(500, CLOSE, HANG)

    tally = _dispatcher(engine, hook_rules, registry).run_once()

    assert (tally.delivered, tally.retrying, tally.dead) == (1, 3, 0)
    [outcome] = _outcomes(engine)
    assert outcome.status == OutcomeStatus.DELIVERED and outcome.attempts == 4
    assert [r.answered for r in http_receiver.received] == [500, CLOSE, HANG, 200]
    assert http_receiver.keys() == {str(outcome.id): 4}
    assert all(r.signature_ok for r in http_receiver.received)


def test_the_last_failure_dead_letters_and_retry_revives(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    add_decision()
    http_receiver.answer_next(500, 502, 503, 504)
    dispatcher = _dispatcher(engine, hook_rules, registry)

    tally = dispatcher.run_once()

    [outcome] = _outcomes(engine)
    assert (tally.retrying, tally.dead) == (3, 1)
    assert outcome.status == OutcomeStatus.DEAD and outcome.attempts == 4
    assert outcome.last_error is not None and "HTTP 504" in outcome.last_error
    assert "token=abc" not in outcome.last_error  # the query string may carry a secret

    retry_outcome(engine, outcome.id)
    assert dispatcher.run_once().delivered == 1
    [outcome] = _outcomes(engine)
    assert outcome.status == OutcomeStatus.DELIVERED and outcome.attempts == 1
    assert http_receiver.keys() == {str(outcome.id): 5}


def test_a_failed_attempt_waits_for_its_backoff(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    add_decision()
    http_receiver.answer_next(500)
    backoff = Backoff(base=timedelta(seconds=20), cap=timedelta(hours=1))
    before = utcnow()

    tally = _dispatcher(engine, hook_rules, registry, backoff=backoff).run_once()

    [outcome] = _outcomes(engine)
    assert (tally.retrying, outcome.status, len(http_receiver.received)) == (
        1, OutcomeStatus.PENDING, 1)
    wait = outcome.next_attempt_at - before
    assert timedelta(seconds=20) <= wait <= timedelta(seconds=41)
    assert "HTTP 500" in (outcome.last_error or "")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    backoff = Backoff(base=timedelta(seconds=10), cap=timedelta(seconds=100))
    for attempt, low in ((1, 10), (2, 20), (3, 40), (4, 80)):
        delays = {backoff.delay(attempt).total_seconds() for _ in range(20)}
        assert all(low <= d <= min(low, 100) + 10 for d in delays)
        assert len(delays) > 1  # jittered
    assert backoff.delay(30).total_seconds() <= 110


def test_a_crash_after_sending_resends_with_the_same_key(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    add_decision()
    process_events(engine, hook_rules)
    [claim] = claim_due(engine, "crashed", timedelta(seconds=1), 10)
    delivery = Delivery(claim.outcome_id, claim.event_id, claim.event_type, claim.rule,
                        claim.payload, claim.params, claim.attempts)
    registry.require(claim.action).deliver(delivery)  # sent; then the dispatcher "dies"
    survivor = _dispatcher(engine, hook_rules, registry, worker_id="survivor")

    assert survivor.run_once().delivered == 0  # the lease still holds
    time.sleep(1.2)
    assert survivor.run_once().delivered == 1

    [outcome] = _outcomes(engine)
    assert outcome.status == OutcomeStatus.DELIVERED and outcome.attempts == 2
    assert http_receiver.keys() == {str(outcome.id): 2}


def test_a_round_cut_short_is_taken_up_by_the_same_dispatcher_at_once(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    add_decision()
    process_events(engine, hook_rules)
    # The database went away after the claim: the round ended with the outcome "sending".
    claim_due(engine, "steady", timedelta(minutes=5), 10)
    assert claim_due(engine, "other", timedelta(minutes=5), 10) == []  # leased to "steady"

    assert _dispatcher(engine, hook_rules, registry, worker_id="steady").run_once().delivered == 1
    [outcome] = _outcomes(engine)
    assert outcome.status == OutcomeStatus.DELIVERED and outcome.attempts == 2
    assert http_receiver.keys() == {str(outcome.id): 1}


def test_a_permanent_failure_is_dead_at_once(
    engine: Engine, make_rules: MakeRules, registry: ActionRegistry, add_decision: AddEvent,
    tmp_path: Path,
) -> None:
    program = tmp_path / "notify.sh"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    rules = make_rules(f'[[rule]]\nname = "run"\non = "request.*"\n[[rule.action]]\n'
                       f'type = "command"\nargv = ["{program}"]\n')
    add_decision()
    program.unlink()  # the program vanished after the rules were loaded

    tally = _dispatcher(engine, rules, registry).run_once()

    [outcome] = _outcomes(engine)
    assert (tally.dead, outcome.status, outcome.attempts) == (1, OutcomeStatus.DEAD, 1)
    assert "cannot be started" in (outcome.last_error or "")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_dispatchers_deliver_every_outcome_exactly_once(
    db_url: str, engine: Engine, hook_rules: RuleSet, registry: ActionRegistry,
    add_decision: AddEvent, http_receiver: HttpReceiver,
) -> None:
    for n in range(30):
        add_decision(ref=f"CR-{n}")
    engines = [engine, make_engine(db_url)]
    dispatchers = [
        _dispatcher(e, hook_rules, registry, worker_id=f"worker-{n}", batch=2)
        for n, e in enumerate(engines)
    ]
    barrier = threading.Barrier(2)
    tallies = []

    def work(dispatcher: Dispatcher) -> None:
        barrier.wait()
        tallies.append(dispatcher.run_once())

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    engines[1].dispose()

    outcomes = _outcomes(engine)
    assert len(outcomes) == 30
    assert {o.status for o in outcomes} == {OutcomeStatus.DELIVERED}
    assert http_receiver.keys() == {str(o.id): 1 for o in outcomes}
    assert sum(t.delivered for t in tallies) == 30
    assert {o.attempts for o in outcomes} == {1}


def test_run_forever_delivers_until_stopped(
    engine: Engine, hook_rules: RuleSet, registry: ActionRegistry, add_decision: AddEvent,
    http_receiver: HttpReceiver,
) -> None:
    stop = threading.Event()
    dispatcher = _dispatcher(engine, hook_rules, registry, idle_seconds=0.05)
    worker = threading.Thread(target=dispatcher.run_forever, args=(stop,))
    worker.start()
    add_decision()
    deadline = time.monotonic() + 10
    while not http_receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(10)

    assert not worker.is_alive()
    assert [o.status for o in _outcomes(engine)] == [OutcomeStatus.DELIVERED]


def test_run_forever_outlives_a_database_that_is_not_there(
    tmp_path: Path, hook_rules: RuleSet, registry: ActionRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables at all
    stop = threading.Event()
    worker = threading.Thread(target=_dispatcher(broken, hook_rules, registry,
                                                 idle_seconds=0.05).run_forever, args=(stop,))
    with caplog.at_level("WARNING", logger="rules.dispatch"):
        worker.start()
        time.sleep(0.4)
        stop.set()
        worker.join(10)
    broken.dispose()

    assert not worker.is_alive()
    rounds = [r for r in caplog.records if "dispatch round stopped" in r.getMessage()]
    assert len(rounds) >= 2  # it kept trying
