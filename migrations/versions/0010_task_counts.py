"""Each user's task count, `user_changes.tasks`, kept by every write that adds or deletes a task:
the cap on a user's tasks reads it instead of counting the tasks on every create.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_changes") as batch:
        batch.add_column(sa.Column("tasks", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    # The tasks every user has. Not rows an interrupted import (SQLite) wrote ahead: they carry a
    # number above the user's, are shown to nobody and are deleted by the next sweep, uncounted.
    op.execute(
        "UPDATE user_changes SET tasks = (SELECT count(*) FROM tasks "
        "WHERE tasks.user_id = user_changes.user_id AND tasks.change_seq <= user_changes.seq)"
    )


def downgrade() -> None:
    with op.batch_alter_table("user_changes") as batch:
        batch.drop_column("tasks")
