"""A response keeps the instruction its replier attached to the decision, as its note.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both dialects (SQLite has DROP COLUMN since 3.35): a batch
# migration would copy the table, which the views that read it do not survive on SQLite.
def upgrade() -> None:
    op.add_column("responses", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("responses", "note")
