"""Single-table bulk writes for the store tests (the pipeline writes several tables at once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table

from ingest.store.bulk import BulkTable, BulkWrite, Row


@dataclass
class KeyedRow:
    """A plain row as a keyed item: it learns its id from the write."""

    row: Row
    id: int | None = None

    def values(self) -> Row:
        return self.row


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` with a bulk write of that table alone."""
    BulkWrite().rows(BulkTable(table), rows).run(connection)


def insert_rows_with_ids(connection: Connection, table: Table,
                         rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` and return their new primary keys, in order."""
    keyed = [KeyedRow(row) for row in rows]
    BulkWrite().keyed(BulkTable(table), keyed).run(connection)
    return [row.id for row in keyed if row.id is not None]
