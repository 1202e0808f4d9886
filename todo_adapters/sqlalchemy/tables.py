"""The tables, as SQLAlchemy Core sees them. Alembic migrations make them; a test proves both agree.

Every table is keyed `(user_id, id)`: one user's rows live together, every query can use the
key's prefix, and a distributed PostgreSQL can shard by `user_id` without a schema change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.types import TypeDecorator

USER_ID_MAX = 255

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out timezone-aware UTC, on every dialect.

    SQLite keeps no offset, so values are stored as UTC wall time and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    # PostgreSQL keeps the instant itself and psycopg hands back aware datetimes in the
    # session's zone, UTC (see `engine.py`): nothing to do per value there.

    def bind_processor(self, dialect: Dialect) -> Any:
        return None if dialect.name == "postgresql" else super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _binary_text(length: int | None = None) -> Any:
    """Text that compares by code point everywhere (PostgreSQL's "C" collation), like Python."""
    return (String(length) if length else Text()).with_variant(
        String(length, collation="C") if length else Text(collation="C"), "postgresql"
    )


def _user_id() -> Column[str]:
    return Column("user_id", String(USER_ID_MAX), nullable=False)


tasks = Table(
    "tasks",
    metadata,
    _user_id(),
    Column("id", Uuid, nullable=False),
    Column("title", String(200), nullable=False),
    Column("title_key", _binary_text(), nullable=False),
    Column("description", Text, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("priority", SmallInteger, nullable=False),
    Column("due_at", UTCDateTime, nullable=True),
    Column("remind_at", UTCDateTime, nullable=True),
    Column("recurrence", String(500), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("category_id", Uuid, nullable=True),
    Column("next_occurrence_id", Uuid, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "id"),
)
# One index per sort order, each ending in the id that breaks ties, so a keyset page is a
# range scan within one user's rows.
for _sort_column in ("created_at", "updated_at", "due_at", "priority", "title_key"):
    Index(None, tasks.c.user_id, tasks.c[_sort_column], tasks.c.id)
Index(None, tasks.c.user_id, tasks.c.remind_at)
Index(None, tasks.c.user_id, tasks.c.category_id)

task_tags = Table(
    "task_tags",
    metadata,
    _user_id(),
    Column("task_id", Uuid, nullable=False),
    # Case-folded keys can outgrow what they fold ("ß" is "ss"): no length limit on them.
    Column("tag_key", _binary_text(), nullable=False),
    Column("tag", _binary_text(50), nullable=False),
    PrimaryKeyConstraint("user_id", "task_id", "tag_key"),
)
Index(None, task_tags.c.user_id, task_tags.c.tag_key)

categories = Table(
    "categories",
    metadata,
    _user_id(),
    Column("id", Uuid, nullable=False),
    Column("name", String(50), nullable=False),
    Column("name_key", _binary_text(), nullable=False),
    Column("color", String(7), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "id"),
)
Index(None, categories.c.user_id, categories.c.name_key, unique=True)

# PostgreSQL-only trigram indexes behind `q` search; made by the migrations, not declared
# here, because SQLite has no such index. The schema test knows to expect them.
POSTGRES_ONLY_INDEXES = frozenset({"ix_tasks_title_trgm", "ix_tasks_description_trgm"})
