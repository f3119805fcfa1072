"""Log lines: text with key=value fields, or one JSON object per line."""

from __future__ import annotations

import json
import logging

from ingest.logs import JsonFormatter, TextFormatter


def record(message: str, **fields: object) -> logging.LogRecord:
    entry = logging.LogRecord("ingest.pipeline", logging.INFO, __file__, 1, message, (), None)
    entry.fields = fields
    return entry


def test_text_lines_carry_the_fields() -> None:
    line = TextFormatter().format(record("message processed", mailbox="approvals", uid=42,
                                         reason="no clear decision"))
    assert line == ('INFO ingest.pipeline: message processed mailbox=approvals uid=42 '
                    'reason="no clear decision"')


def test_json_lines_are_one_object_each() -> None:
    line = JsonFormatter().format(record("message processed", mailbox="approvals", request=None))
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["level"], entry["logger"], entry["mailbox"], entry["request"]) == (
        "info", "ingest.pipeline", "approvals", None)
    assert entry["time"].endswith("Z")
