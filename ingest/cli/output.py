"""Rendering rows as a table for people, or JSON / CSV for scripts."""

from __future__ import annotations

import csv
import enum
import io
import json
import shutil
import textwrap
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ingest.timeutil import isoformat_z

FORMATS = ("table", "json", "csv")
_GAP = "  "
# Below this a wrapped column is mostly line breaks: show the rows as records instead.
_NARROWEST = 10


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
           width: int | None = None) -> str:
    """Rows as ``table``, ``json`` (one array) or ``csv``.

    A table fits in ``width`` columns (default: the terminal's, ``COLUMNS`` if set) by wrapping
    its widest cells onto more lines; no cell is ever cut, so a reason is always read whole.
    """
    if fmt == "json":
        return json.dumps(
            [plain({c: row.get(c) for c in columns}) for row in rows], ensure_ascii=False, indent=1
        )
    if fmt == "csv":
        return _csv(rows, columns)
    return _table(rows, columns, width or shutil.get_terminal_size().columns)


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
    cells = [[_text(row.get(c)) for c in columns] for row in rows]
    natural = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    widths = fit_widths(natural, width - len(_GAP) * (len(columns) - 1))
    if widths is None:
        return _records(cells, columns, width)
    lines = _wrapped_line(list(columns), widths)
    lines.append(_GAP.join("-" * w for w in widths))
    for row_cells in cells:
        lines += _wrapped_line(row_cells, widths)
    return "\n".join(line.rstrip() for line in lines)


def fit_widths(natural: Sequence[int], room: int) -> list[int] | None:
    """Column widths summing to at most ``room``, the widest giving way first; None if too many.

    None means some column would have to be narrower than ``_NARROWEST`` to fit.
    """
    widths = list(natural)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= _NARROWEST:
            return None
        widths[widest] -= 1
    return widths


def _records(cells: Sequence[Sequence[str]], columns: Sequence[str], width: int) -> str:
    """Too many columns for the terminal: one ``name  value`` block per row, values wrapped."""
    label = max(len(c) for c in columns)
    room = max(width - label - len(_GAP), _NARROWEST)
    blocks = []
    for row_cells in cells:
        lines = []
        for column, value in zip(columns, row_cells, strict=True):
            for n, part in enumerate(_wrap(value, room)):
                lines.append(f"{column if n == 0 else '':<{label}}{_GAP}{part}".rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _wrap(value: str, width: int) -> list[str]:
    return textwrap.wrap(value, width, break_on_hyphens=False) or [""]


def _wrapped_line(values: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row, as many terminal lines as its tallest wrapped cell needs."""
    parts = [_wrap(v, w) for v, w in zip(values, widths, strict=True)]
    height = max(len(p) for p in parts)
    return [
        _GAP.join((p[n] if n < len(p) else "").ljust(w) for p, w in zip(parts, widths, strict=True))
        for n in range(height)
    ]


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return " ".join(_cell_text(value).split())
