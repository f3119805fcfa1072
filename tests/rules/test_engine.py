"""The rules engine: evaluation order, stop, explanations, and events -> outcomes in the DB."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select

from ingest.parse.base import Intent
from ingest.store.db import make_engine, read_session, transaction
from ingest.store.models import Event, Outcome, OutcomeStatus, RequestStatus
from rules.engine import evaluate, process_events
from rules.loader import RuleSet
from tests.rules.conftest import AddEvent, MakeRules

RULES = """
[[rule]]
name = "change-requests"
on = ["request.approved", "request.rejected"]
when = { ref = "CR-*" }
[[rule.action]]
type = "log"
[[rule.action]]
type = "log"
level = "warning"

[[rule]]
name = "rejections-stop-here"
on = ["request.rejected"]
stop = true
[[rule.action]]
type = "log"

[[rule]]
name = "all-decisions"
on = ["request.*"]
[[rule.action]]
type = "log"
"""


@pytest.fixture
def rules(make_rules: MakeRules) -> RuleSet:
    return make_rules(RULES)


def _payload(event: str, ref: str) -> dict[str, object]:
    return {"event": event, "request": {"ref": ref}, "response": {"intent": "approve"}}


def test_every_matching_rule_fires_in_order(rules: RuleSet) -> None:
    verdicts = evaluate(rules, "request.approved", _payload("request.approved", "CR-7"))
    assert [(v.rule.name, v.fired) for v in verdicts] == [
        ("change-requests", True), ("rejections-stop-here", False), ("all-decisions", True)]
    assert verdicts[0].reason == "request.ref 'CR-7' matches 'CR-*'"
    assert verdicts[1].reason.startswith("listens to request.rejected, not request.approved")


def test_stop_ends_the_matching_and_says_so(rules: RuleSet) -> None:
    verdicts = evaluate(rules, "request.rejected", _payload("request.rejected", "INC-1"))
    assert [(v.rule.name, v.fired) for v in verdicts] == [
        ("change-requests", False), ("rejections-stop-here", True), ("all-decisions", False)]
    assert "NOT matches 'CR-*'" in verdicts[0].reason
    assert verdicts[2].reason == "not tried: rule 'rejections-stop-here' fired with stop = true"


def test_events_become_outcomes_once(engine: Engine, rules: RuleSet,
                                     add_decision: AddEvent) -> None:
    approved = add_decision(ref="CR-1")
    unmatched = add_decision(ref="INC-2", status=RequestStatus.REJECTED, intent=Intent.REJECT)

    assert process_events(engine, rules) == 2
    assert process_events(engine, rules) == 0

    with read_session(engine) as session:
        outcomes = session.scalars(select(Outcome).order_by(Outcome.id)).all()
        events = session.scalars(select(Event)).all()
    assert [(o.event_id, o.rule, o.action, o.params["level"]) for o in outcomes] == [
        (approved, "change-requests", "log", "info"),
        (approved, "change-requests", "log", "warning"),
        (approved, "all-decisions", "log", "info"),
        (unmatched, "rejections-stop-here", "log", "info"),
    ]
    assert {o.status for o in outcomes} == {OutcomeStatus.PENDING}
    assert all(o.attempts == 0 and o.params["max_attempts"] == 8 for o in outcomes)
    assert all(event.processed_at is not None for event in events)
    trace = next(e.rule_trace for e in events if e.id == unmatched)
    assert [(t["rule"], t["fired"]) for t in trace] == [
        ("change-requests", False), ("rejections-stop-here", True), ("all-decisions", False)]
    assert trace[2]["reason"].startswith("not tried: rule 'rejections-stop-here' fired")


def test_an_event_no_rule_wants_is_processed_without_outcomes(
    engine: Engine, make_rules: MakeRules, add_decision: AddEvent
) -> None:
    rules = make_rules('[[rule]]\nname = "x"\non = "auth.failed"\n[[rule.action]]\ntype = "log"\n')
    add_decision()
    assert process_events(engine, rules) == 1
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Outcome)) == 0


def test_batches_are_limited(engine: Engine, rules: RuleSet, add_decision: AddEvent) -> None:
    for n in range(5):
        add_decision(ref=f"CR-{n}")
    assert process_events(engine, rules, limit=2) == 2
    assert process_events(engine, rules, limit=10) == 3


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_engines_never_process_an_event_twice(
    db_url: str, engine: Engine, rules: RuleSet, add_decision: AddEvent
) -> None:
    for n in range(40):
        add_decision(ref=f"CR-{n}")
    engines = [engine, make_engine(db_url)]  # two processes' worth of connections
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def work(worker_engine: Engine) -> None:
        barrier.wait()
        total = 0
        while batch := process_events(worker_engine, rules, limit=3):
            total += batch
        counts.append(total)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    engines[1].dispose()

    assert sum(counts) == 40  # nothing twice
    with transaction(engine) as session:
        per_event = session.execute(
            select(Outcome.event_id, func.count()).where(Outcome.rule == "all-decisions")
            .group_by(Outcome.event_id)).all()
    assert len(per_event) == 40 and {n for _, n in per_event} == {1}
