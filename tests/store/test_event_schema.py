"""The event payload contract: the made schema, README's copy of it, and old payloads."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from ingest.store.event_schema import event_schema
from ingest.store.migrate import PROJECT_ROOT

# A request.approved payload as ackmail wrote it before payloads carried a version.
UNVERSIONED = {
    "event": "request.approved",
    "request": {"id": 7, "kind": "approval", "ref": "CR-1", "subject": "Expense claim",
                "status": "approved", "policy": "any", "created_at": "2026-11-02T10:00:00Z",
                "expires_at": "2026-11-03T10:00:00Z", "decided_at": "2026-11-02T10:04:00Z"},
    "response": {"id": 3, "address": "alice@example.test", "intent": "approve",
                 "reply_text": "Approved.", "counted": True, "decisive": True,
                 "reason": "first approval; policy any decides", "sender_verified": None},
    "message": {"id": 11, "mailbox": "approvals", "message_id": "1@mail.example.test",
                "sender": "alice@example.test", "subject": "RE: Expense claim [R7K2-9QXM]",
                "kind": "reply", "status": "processed", "reason": "first approval"},
}
AUTH_FAILED = {"version": 1, "event": "auth.failed", "mailbox": "approvals",
               "cause": "the refresh token expired", "fix": "run 'ackmail auth login'",
               "command": "ackmail auth login --mailbox approvals"}


def validate(payload: dict[str, Any]) -> None:
    jsonschema.validate(payload, event_schema(), cls=jsonschema.Draft202012Validator)


def test_a_payload_written_before_versioning_still_validates() -> None:
    validate(UNVERSIONED)
    validate(AUTH_FAILED)


@pytest.mark.parametrize("broken", [
    {"request": UNVERSIONED["request"]},  # no event type
    {**UNVERSIONED, "response": {**UNVERSIONED["response"], "counted": "yes"}},
    {**UNVERSIONED, "message": {k: v for k, v in UNVERSIONED["message"].items() if k != "id"}},
    {**AUTH_FAILED, "warnings": "soon"},
])
def test_a_payload_that_breaks_the_contract_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_readme_prints_the_schema_the_code_makes() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- event-schema -->\n```json\n(.*?)\n```", readme, re.DOTALL)
    assert found, "README.md lacks the event schema block"
    assert json.loads(found.group(1)) == event_schema(), \
        "README's event schema is stale: paste json.dumps(event_schema(), indent=1)"
