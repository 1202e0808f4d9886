"""Calendar subscription links: `calendar_feeds`, keyed (user_id, id), the secret only as a hash.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "id", name="pk_calendar_feeds"),
    )
    op.create_index("ix_calendar_feeds_user_id_secret_hash", "calendar_feeds", ["user_id", "secret_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_calendar_feeds_user_id_secret_hash", table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
