"""``log``: one structured line on the ``ackmail.rules`` logger.

The line is a JSON object (outcome, rule, event, the request/response/message
keys ops search by, and the optional templated ``message``); the same dict is
attached to the record as ``extra["ackmail"]`` for structured log handlers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rules.base import ActionEnvironment, Delivery
from rules.fields import lookup
from rules.params import Params
from rules.templates import render

LOGGER_NAME = "ackmail.rules"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
# The payload fields copied into every line when the event has them.
KEY_FIELDS = ("request.id", "request.ref", "request.status", "response.address",
              "response.intent", "message.id", "message.sender", "mailbox", "cause", "fix",
              "command")

logger = logging.getLogger(LOGGER_NAME)


class LogAction:
    """Write the event to the log."""

    name = "log"

    def __init__(self, env: ActionEnvironment) -> None:
        self.env = env

    def prepare(self, params: Params) -> dict[str, Any]:
        """Keys: level (debug, info, warning, error), message (a template)."""
        return {
            "level": params.choice("level", tuple(LEVELS), "info"),
            "message": params.template("message", ""),
        }

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """Log the line; a log line cannot fail to be delivered."""
        record: dict[str, Any] = {
            "outcome": delivery.outcome_id,
            "rule": delivery.rule,
            "event": delivery.event_type,
        }
        for path in KEY_FIELDS:
            found, value = lookup(delivery.payload, path)
            if found and value is not None:
                record[path] = value
        if delivery.params.get("message"):
            record["message"] = render(delivery.params["message"], delivery.payload)
        level = LEVELS[str(delivery.params.get("level", "info"))]
        logger.log(level, "%s", json.dumps(record, ensure_ascii=False), extra={"ackmail": record})
        return {"logged": True}
