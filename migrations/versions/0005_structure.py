"""Structure and all-day dates: `parent_id` (subtasks), `position` (manual order), `due_date`,
and `due_key`, the instant lists filter and sort a task's due date by.

Existing tasks are all top-level, so each user's tasks are siblings: they get positions in the
order they were created (the order a list showed by default), spaced as appending them one by
one would. `due_key` is their `due_at`: none of them is all-day yet. Change numbers stay as
they are: a device that synced before sees a position only once the task changes again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import fractional_indexing
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 1000


def _binary_text() -> sa.types.TypeEngine[str]:
    """Text compared by code point: PostgreSQL's "C" collation; SQLite's default already is."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("due_key", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("position", _binary_text(), nullable=True))
    op.execute("UPDATE tasks SET due_key = due_at")
    _backfill_positions()
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("position", existing_type=_binary_text(), nullable=False)
    op.drop_index("ix_tasks_user_id_due_at_id", "tasks")
    op.create_index("ix_tasks_user_id_due_key_id", "tasks", ["user_id", "due_key", "id"])
    op.create_index("ix_tasks_user_id_position_id", "tasks", ["user_id", "position", "id"])
    op.create_index("ix_tasks_user_id_parent_id_position_id", "tasks", ["user_id", "parent_id", "position", "id"])


def _backfill_positions() -> None:
    """Each user's tasks, in creation order, get the positions appending them one by one gives."""
    connection = op.get_bind()
    tasks = sa.table(
        "tasks",
        sa.column("user_id", sa.String),
        sa.column("id", sa.Uuid),
        sa.column("created_at", sa.DateTime),
        sa.column("position", sa.Text),
    )
    users = connection.execute(sa.select(tasks.c.user_id).distinct()).scalars().all()
    update = (
        sa.update(tasks)
        .where(tasks.c.user_id == sa.bindparam("b_user_id"), tasks.c.id == sa.bindparam("b_id"))
        .values(position=sa.bindparam("b_position"))
    )
    for user_id in users:
        ids = connection.execute(
            sa.select(tasks.c.id).where(tasks.c.user_id == user_id).order_by(tasks.c.created_at, tasks.c.id)
        ).scalars()
        position: str | None = None
        batch: list[dict[str, object]] = []
        for task_id in ids.all():
            position = fractional_indexing.generate_key_between(position, None)
            batch.append({"b_user_id": user_id, "b_id": task_id, "b_position": position})
            if len(batch) == _BATCH:
                connection.execute(update, batch)
                batch = []
        if batch:
            connection.execute(update, batch)


def downgrade() -> None:
    # An all-day task keeps a due date: the instant its day starts, as lists sorted it.
    op.execute("UPDATE tasks SET due_at = due_key WHERE due_date IS NOT NULL")
    op.drop_index("ix_tasks_user_id_parent_id_position_id", "tasks")
    op.drop_index("ix_tasks_user_id_position_id", "tasks")
    op.drop_index("ix_tasks_user_id_due_key_id", "tasks")
    op.create_index("ix_tasks_user_id_due_at_id", "tasks", ["user_id", "due_at", "id"])
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("position")
        batch.drop_column("parent_id")
        batch.drop_column("due_key")
        batch.drop_column("due_date")
