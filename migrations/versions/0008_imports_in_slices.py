"""Imports written in slices (SQLite): `user_changes.importing` names the import that is writing
a user's tasks ahead of its commit; the rows it wrote carry a change number above the user's, so
no read shows them until it commits (see `todo_adapters.sqlalchemy.import_slices`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_changes") as batch:
        batch.add_column(sa.Column("importing", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_changes") as batch:
        batch.drop_column("importing")
