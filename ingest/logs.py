"""Logging set-up: human-readable lines or one JSON object per line, never a secret.

Structured fields travel in ``extra={"fields": {...}}``; the text format appends
them as ``key=value``, the JSON format merges them into the object.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record carries (``extra={"fields": ...}``)."""
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{k}={_text(v)}" for k, v in fields_of(record).items())
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class _AckmailHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ackmail installs, told apart from any other on the root logger.

    It writes to whatever ``sys.stderr`` is when a record arrives, so a worker thread
    that outlives a redirected stderr (a test's capture) still has a stream.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(*, verbose: bool = False, fmt: str = "text") -> None:
    """Send ackmail's logs to stderr in ``fmt``; INFO by default, DEBUG with ``verbose``."""
    handler = _AckmailHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    # Replace only our own handler: a host (or pytest) may have put its own there.
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _AckmailHandler)]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("ackmail").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("ingest").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("rules").setLevel(logging.DEBUG if verbose else logging.INFO)
