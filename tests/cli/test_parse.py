"""``ackmail parse``: what a reply says, and which rule decided it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run

REPLY = (
    "From: Anna Berg <anna@example.test>\r\nTo: approvals@example.test\r\n"
    "Subject: RE: Approval needed\r\n\r\n"
    "Yes, go ahead, but please tell the on-call team first.\r\n\r\n"
    "On Mon, Dec 7, 2026 at 9:12 AM Ops Bot <ops@example.test> wrote:\r\n"
    "> Reply APPROVE or REJECT.\r\n"
)


def test_parse_names_the_rule_that_decided_and_what_affirm_becomes(
    run: Run, tmp_path: Path
) -> None:
    message = tmp_path / "reply.eml"
    message.write_text(REPLY)
    done = run("parse", str(message))
    assert done.code == 0, done.err
    assert "intent affirm (approves an approval request, acknowledges an alert)" in done.out
    assert ("rule 'short affirmative': 'yes' is the whole first clause; the instruction after "
            "it is kept as the note: 'please tell the on-call team first'") in done.out
    assert "reply text: 'Yes, go ahead, but please tell the on-call team first.'" in done.out


def test_parse_json_keeps_the_intent_s_own_name(run: Run, tmp_path: Path) -> None:
    message = tmp_path / "reply.eml"
    message.write_text(REPLY)
    done = run("parse", "--json", str(message))
    assert done.code == 0, done.err
    assert json.loads(done.out)["intent"] == "affirm"
