"""Reminders: `reminders` (those not yet due, one row per task), keyed by user_id first; the
`reminder.due` deliveries written ahead of their time by 0007 move there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# 0007 wrote a task's reminder as a delivery per endpoint, due at `remind_at`; such a delivery
# not yet attempted is the reminder itself (the same event id for every endpoint).
_WAITING = "event_type = 'reminder.due' AND state = 'pending' AND attempts = 0 AND task_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "event_id", name="pk_reminders"),
    )
    op.create_index("ix_reminders_due_at", "reminders", ["due_at"])
    op.create_index("ix_reminders_user_id_task_id", "reminders", ["user_id", "task_id"])
    op.execute(
        "INSERT INTO reminders (user_id, event_id, task_id, due_at, body, created_at) "
        "SELECT DISTINCT user_id, event_id, task_id, next_attempt_at, body, created_at "
        f"FROM webhook_deliveries WHERE {_WAITING}"
    )
    op.execute(f"DELETE FROM webhook_deliveries WHERE {_WAITING}")


def downgrade() -> None:
    # Back to 0007's form: a delivery per enabled endpoint that wants reminders, due at the time.
    op.execute(
        "INSERT INTO webhook_deliveries (user_id, webhook_id, event_id, event_type, body, created_at, state, "
        "attempts, next_attempt_at, task_id) "
        "SELECT r.user_id, w.id, r.event_id, 'reminder.due', r.body, r.created_at, 'pending', 0, r.due_at, r.task_id "
        "FROM reminders r JOIN webhooks w ON w.user_id = r.user_id "
        "WHERE w.disabled_at IS NULL AND (',' || w.events || ',') LIKE '%,reminder.due,%'"
    )
    op.drop_index("ix_reminders_user_id_task_id", table_name="reminders")
    op.drop_index("ix_reminders_due_at", table_name="reminders")
    op.drop_table("reminders")
