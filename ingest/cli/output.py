"""Rendering rows as a table for people, or JSON / CSV for scripts."""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ingest.timeutil import isoformat_z

FORMATS = ("table", "json", "csv")
_CELL_WIDTH = 60


def plain(value: Any) -> Any:
    """A JSON-ready value: datetimes as ISO 8601 UTC with Z, enums as their value."""
    if isinstance(value, datetime):
        return isoformat_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Compact, stable JSON of any row structure."""
    return json.dumps(plain(value), ensure_ascii=False, sort_keys=False)


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
           width: int = _CELL_WIDTH) -> str:
    """Rows as ``table`` (aligned, cells cut at ``width``), ``json`` (one array) or ``csv``."""
    if fmt == "json":
        return json.dumps(
            [plain({c: row.get(c) for c in columns}) for row in rows], ensure_ascii=False, indent=1
        )
    if fmt == "csv":
        return _csv(rows, columns)
    return _table(rows, columns, width)


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell_text(row.get(c)) for c in columns])
    return buffer.getvalue().rstrip("\n")


def _cell_text(value: Any) -> str:
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int) -> str:
    if not rows:
        return "(no rows)"
    cells = [[_short(row.get(c), width) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _short(value: Any, width: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    text = " ".join(_cell_text(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
