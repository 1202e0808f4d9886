"""Time zones: each task's `time_zone`, and each user's settings (its default).

Existing tasks get UTC, the zone their repeat rules were stepped in until now: nothing they do
changes. Their change numbers stay as they are (no sync traffic for a column that every copy
made before can take to be UTC).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"))
    # The default was for the rows already there; the application always writes the zone.
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("time_zone", server_default=None)
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_settings"),
    )


def downgrade() -> None:
    op.drop_table("user_settings")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("time_zone")
