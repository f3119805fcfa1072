"""The log action: one JSON line on the ackmail.rules logger."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rules.actions.log import LOGGER_NAME, LogAction
from rules.base import ActionEnvironment, Delivery
from rules.fields import event_fields
from rules.params import Params

PAYLOAD = {"event": "auth.failed", "mailbox": "approvals", "cause": "the refresh token expired",
           "fix": "sign in again", "command": "ackmail auth login approvals"}


def test_a_structured_line_with_the_key_fields(caplog: pytest.LogCaptureFixture) -> None:
    action = LogAction(ActionEnvironment())
    params = Params({"level": "error", "message": "cannot sign in to ${mailbox}: ${cause}"},
                    fields=event_fields("auth.failed"), base_dir=Path("."))
    prepared = action.prepare(params)
    params.finish()
    assert params.problems == []

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        result = action.deliver(Delivery(5, 2, "auth.failed", "sign-in", PAYLOAD, prepared))

    [record] = caplog.records
    line = json.loads(record.getMessage())
    assert result == {"logged": True}
    assert (record.name, record.levelno) == (LOGGER_NAME, logging.ERROR)
    assert line == {"outcome": 5, "rule": "sign-in", "event": "auth.failed",
                    "mailbox": "approvals", "cause": "the refresh token expired",
                    "fix": "sign in again", "command": "ackmail auth login approvals",
                    "message": "cannot sign in to approvals: the refresh token expired"}
    assert record.ackmail == line  # type: ignore[attr-defined]


def test_a_bad_level_and_an_unknown_field_are_refused() -> None:
    params = Params({"level": "loud", "message": "${request.ref}"},
                    fields=event_fields("auth.failed"), base_dir=Path("."))
    LogAction(ActionEnvironment()).prepare(params)
    assert [key for key, _ in params.problems] == ["level", "message"]
