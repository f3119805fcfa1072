"""Tables that fit the terminal: wrapped, never cut; JSON and CSV untouched by the width."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ingest.cli.output import fit_widths, render

WHY = ("matches no request: the subject names no CR- or INC- reference and In-Reply-To "
       "is not a message ackmail sent, so nothing could be decided")
ROWS = [
    {"id": 1, "mailbox": "approvals", "status": "ignored", "reason": WHY},
    {"id": 22, "mailbox": "x", "status": "processed", "reason": "ok"},
]
COLUMNS = ("id", "mailbox", "status", "reason")


def _column(table: str, name: str) -> str:
    """The text of one column of a table, its wrapped lines joined back with spaces."""
    lines = table.splitlines()
    start = lines[0].index(name)
    return " ".join(line[start:].strip() for line in lines[2:] if line[start:].strip())


@pytest.mark.parametrize("columns", [50, 80, 120])
def test_a_table_fits_the_terminal_and_keeps_the_reason_whole(
    monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    table = render(ROWS, COLUMNS, "table")
    assert max(len(line) for line in table.splitlines()) <= columns
    assert _column(table, "reason") == f"{WHY} ok"
    assert "…" not in table


def test_a_wide_terminal_keeps_one_line_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    assert len(render(ROWS, COLUMNS, "table").splitlines()) == 2 + len(ROWS)


def test_too_many_columns_become_records_that_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    many = [{f"column_{n}": f"value {n}" for n in range(12)} | {"reason": WHY}]
    out = render(many, (*many[0].keys(),), "table")
    assert max(len(line) for line in out.splitlines()) <= 60
    assert out.splitlines()[0].split() == ["column_0", "value", "0"]
    assert WHY in " ".join(out.split())


def test_the_widest_column_gives_way_first() -> None:
    assert fit_widths([2, 40, 100], 80) == [2, 39, 39]
    assert fit_widths([2, 10], 80) == [2, 10]
    assert fit_widths([30, 30, 30], 20) is None


def test_json_and_csv_do_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render(ROWS, COLUMNS, "json"), render(ROWS, COLUMNS, "csv")
    monkeypatch.setenv("COLUMNS", "400")
    assert (render(ROWS, COLUMNS, "json"), render(ROWS, COLUMNS, "csv")) == narrow
    assert json.loads(narrow[0])[0]["reason"] == WHY
    assert next(csv.DictReader(io.StringIO(narrow[1])))["reason"] == WHY
