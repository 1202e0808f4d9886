"""The full task model: priority, due dates, reminders, recurrence, tags and categories.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _binary_text(length: int | None = None) -> sa.types.TypeEngine[str]:
    """Text compared by code point: PostgreSQL's "C" collation; SQLite's default already is."""
    plain = sa.String(length) if length else sa.Text()
    exact = sa.String(length, collation="C") if length else sa.Text(collation="C")
    return plain.with_variant(exact, "postgresql")


_SORT_INDEXES = {
    "ix_tasks_user_id_updated_at_id": ["user_id", "updated_at", "id"],
    "ix_tasks_user_id_due_at_id": ["user_id", "due_at", "id"],
    "ix_tasks_user_id_priority_id": ["user_id", "priority", "id"],
    "ix_tasks_user_id_title_key_id": ["user_id", "title_key", "id"],
    "ix_tasks_user_id_remind_at": ["user_id", "remind_at"],
    "ix_tasks_user_id_category_id": ["user_id", "category_id"],
}
_NEW_COLUMNS = [
    sa.Column("title_key", _binary_text(), nullable=False, server_default=""),
    sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recurrence", sa.String(500), nullable=True),
    sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("category_id", sa.Uuid(), nullable=True),
    sa.Column("next_occurrence_id", sa.Uuid(), nullable=True),
]


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in _NEW_COLUMNS:
            batch.add_column(column)
    _fill_title_keys()
    for name, columns in _SORT_INDEXES.items():
        op.create_index(name, "tasks", columns)

    op.create_table(
        "task_tags",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("tag_key", _binary_text(), nullable=False),
        sa.Column("tag", _binary_text(50), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "task_id", "tag_key", name="pk_task_tags"),
    )
    op.create_index("ix_task_tags_user_id_tag_key", "task_tags", ["user_id", "tag_key"])

    op.create_table(
        "categories",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("name_key", _binary_text(), nullable=False),
        sa.Column("color", sa.String(7), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "id", name="pk_categories"),
    )
    op.create_index("ix_categories_user_id_name_key", "categories", ["user_id", "name_key"], unique=True)

    if op.get_bind().dialect.name == "postgresql":
        # Trigram indexes let `q` (ILIKE '%...%') skip rows without a full scan.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_tasks_title_trgm ON tasks USING gin (title gin_trgm_ops)")
        op.execute("CREATE INDEX ix_tasks_description_trgm ON tasks USING gin (description gin_trgm_ops)")


def _fill_title_keys() -> None:
    """Give existing tasks the sort key the application computes (Python's casefold, which
    neither database's lower() matches exactly)."""
    tasks = sa.table(
        "tasks",
        sa.column("user_id", sa.String),
        sa.column("id", sa.Uuid),
        sa.column("title", sa.String),
        sa.column("title_key", sa.Text),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(tasks.c.user_id, tasks.c.id, tasks.c.title)).all()
    statement = (
        sa.update(tasks)
        .where(tasks.c.user_id == sa.bindparam("owner"), tasks.c.id == sa.bindparam("task_id"))
        .values(title_key=sa.bindparam("key"))
    )
    for start in range(0, len(rows), 1000):
        batch = rows[start : start + 1000]
        bind.execute(
            statement, [{"owner": user, "task_id": task, "key": title.casefold()} for user, task, title in batch]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_tasks_description_trgm")
        op.execute("DROP INDEX ix_tasks_title_trgm")
    op.drop_index("ix_categories_user_id_name_key", table_name="categories")
    op.drop_table("categories")
    op.drop_index("ix_task_tags_user_id_tag_key", table_name="task_tags")
    op.drop_table("task_tags")
    for name in _SORT_INDEXES:
        op.drop_index(name, table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for column in reversed(_NEW_COLUMNS):
            batch.drop_column(column.name)
