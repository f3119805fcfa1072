"""The invariant checker itself: silent on a clean run, and it names each broken guarantee.

A small backlog goes through one ``ackmail poll --once`` without faults; the checker must
find nothing. Then the results are broken on purpose, one guarantee at a time, and each
break must be reported with the message, request or outcome it concerns.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from ingest.store.db import transaction
from ingest.store.models import (
    Message,
    MessageStatus,
    Outcome,
    OutcomeStatus,
    Request,
    RequestStatus,
)
from rules.actions.webhook import sign
from tests.faults.harness import FaultRun
from tests.faults.invariants import problems
from tests.servers.rules_fixtures import WEBHOOK_SECRET
from tests.sources.mail import unrelated

MESSAGES = 40


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_checker_passes_a_clean_run_and_names_every_broken_guarantee(
        password_run: FaultRun) -> None:
    run = password_run
    run.deliver(MESSAGES)
    drained = run.installation.run("poll", "--once")
    assert drained.code == 0, drained.describe()
    assert problems(run.scene) == []

    expected = [_deliver_twice_with_another_key(run), *_break_the_database(run),
                _leave_mail_behind(run)]

    found = "\n".join(problems(run.scene))
    for sentence in expected:
        assert sentence in found, f"not reported: {sentence!r}; reported:\n{found}"


def _deliver_twice_with_another_key(run: FaultRun) -> str:
    first = run.scene.receiver.accepted()[0]
    requests.post(f"{run.scene.receiver.url}{first.path}", data=first.body, timeout=5,
                  headers={"Idempotency-Key": "other-key", "Content-Type": "application/json",
                           "X-Ackmail-Signature": sign(first.body, WEBHOOK_SECRET)})
    return (f"reached {first.path} with 2 idempotency keys "
            f"{sorted([first.idempotency_key or '', 'other-key'])}")


def _break_the_database(run: FaultRun) -> list[str]:
    with transaction(run.scene.engine) as session:
        decided = session.scalars(select(Request).where(Request.decided_at.is_not(None))).first()
        assert decided is not None, "the backlog decided no request"
        decided.status = RequestStatus.PENDING
        stray = session.scalars(select(Message).where(Message.request_id.is_(None))).first()
        assert stray is not None, "the backlog has no unrelated message"
        stray.status, stray.reason = MessageStatus.QUARANTINED, "broken on purpose"
        session.add(Message(mailbox=stray.mailbox, source_key=f"{stray.source_key}:copy",
                            message_id_header=stray.message_id_header,
                            content_hash=stray.content_hash, status=MessageStatus.IGNORED,
                            reasons=[]))
        outcome = session.scalars(select(Outcome)).first()
        assert outcome is not None, "the backlog made no outcome"
        outcome.status = OutcomeStatus.DEAD
    return [f"request #{decided.id} is pending, but its first valid reply",
            f"message {stray.message_id_header} ({stray.source_key}) was quarantined: "
            "broken on purpose",
            f"message {stray.message_id_header} is recorded 2 times",
            f"outcome #{outcome.id} (rule '{outcome.rule}', event #{outcome.event_id}) is dead"]


def _leave_mail_behind(run: FaultRun) -> str:
    run.scene.server.deliver_many(run.scene.user, [unrelated("left behind ")])
    return "1 message(s) are still in the INBOX"
