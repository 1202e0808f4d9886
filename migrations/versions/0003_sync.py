"""Sync: each user's change sequence, the change number on every row, tombstones, and
idempotency keys.

Existing rows are the first change of their user: a client's first sync is a snapshot anyway.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STAMPED = ("tasks", "categories")


def _binary_text(length: int) -> sa.types.TypeEngine[str]:
    """Text compared by code point: PostgreSQL's "C" collation; SQLite's default already is."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_changes",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_changes"),
    )
    op.execute(
        "INSERT INTO user_changes (user_id, seq, horizon) "
        "SELECT user_id, 1, 0 FROM tasks UNION SELECT user_id, 1, 0 FROM categories"
    )
    for table in _STAMPED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="1"))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("change_seq", server_default=None)
        op.create_index(f"ix_{table}_user_id_change_seq_id", table, ["user_id", "change_seq", "id"])

    op.create_table(
        "tombstones",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "id", name="pk_tombstones"),
    )
    op.create_index("ix_tombstones_user_id_change_seq_id", "tombstones", ["user_id", "change_seq", "id"])
    op.create_index("ix_tombstones_deleted_at", "tombstones", ["deleted_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("key", _binary_text(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_recorded_at", "idempotency_keys", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("tombstones")
    for table in _STAMPED:
        op.drop_index(f"ix_{table}_user_id_change_seq_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("change_seq")
    op.drop_table("user_changes")
