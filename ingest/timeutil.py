"""Time helpers: every timestamp ackmail handles is timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)

MAX_DURATION = timedelta(days=36525)


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``90s``, ``15m``, ``24h``, ``3d`` or ``2w``.

    Raises ValueError with a message that shows the accepted form.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration; write a number and a unit, e.g. 30m, 24h, 3d"
        )
    number, unit = match.groups()
    seconds = float(number) * _UNIT_SECONDS[unit.lower()]
    # Dates a century away overflow datetime arithmetic and mean a typo anyway.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"'{text}' is longer than 100 years; write a shorter duration")
    return timedelta(seconds=seconds)


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def isoformat_z(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` suffix, as the JSON output promises."""
    if moment is None:
        return None
    return as_utc(moment).isoformat().replace("+00:00", "Z")
