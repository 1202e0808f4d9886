"""The tables, as SQLAlchemy Core sees them. Alembic migrations make them; a test proves both agree.

Every table is keyed `(user_id, id)`: one user's rows live together, every query can use the
key's prefix, and a distributed PostgreSQL can shard by `user_id` without a schema change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.types import TypeDecorator

USER_ID_MAX = 255
#: Room for any IANA zone name (the longest is 32 characters) and more.
TIME_ZONE_MAX = 64

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


def _change_seq() -> Column[int]:
    """The user's change number of the commit that last wrote the row (see `user_changes`)."""
    return Column("change_seq", BigInteger, nullable=False)


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
    Column("due_date", Date, nullable=True),
    # When lists see the task due: `due_at`, or the start of `due_date` in the task's zone.
    Column("due_key", UTCDateTime, nullable=True),
    Column("remind_at", UTCDateTime, nullable=True),
    Column("recurrence", String(500), nullable=True),
    Column("time_zone", String(TIME_ZONE_MAX), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("category_id", Uuid, nullable=True),
    Column("parent_id", Uuid, nullable=True),
    Column("next_occurrence_id", Uuid, nullable=True),
    # A fractional index key (todo_core.ordering): compared by code point, as Python does.
    Column("position", _binary_text(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    _change_seq(),
    PrimaryKeyConstraint("user_id", "id"),
)
# One index per sort order, each ending in the id that breaks ties, so a keyset page is a
# range scan within one user's rows.
for _sort_column in ("created_at", "updated_at", "due_key", "priority", "title_key", "position"):
    Index(None, tasks.c.user_id, tasks.c[_sort_column], tasks.c.id)
# A task's steps in their order; the top-level tasks (no parent) in theirs.
Index(None, tasks.c.user_id, tasks.c.parent_id, tasks.c.position, tasks.c.id)
Index(None, tasks.c.user_id, tasks.c.remind_at)
Index(None, tasks.c.user_id, tasks.c.category_id)
Index(None, tasks.c.user_id, tasks.c.change_seq, tasks.c.id)

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
    _change_seq(),
    PrimaryKeyConstraint("user_id", "id"),
)
Index(None, categories.c.user_id, categories.c.name_key, unique=True)
Index(None, categories.c.user_id, categories.c.change_seq, categories.c.id)

# A user's settings (`todo_core.user_settings.UserSettings`), one row per user who saved any.
user_settings = Table(
    "user_settings",
    metadata,
    _user_id(),
    Column("time_zone", String(TIME_ZONE_MAX), nullable=False),
    PrimaryKeyConstraint("user_id"),
)

# Each user's change sequence. A commit that changes the user's data increments `seq` first
# (and so holds this row until it ends) and writes the new number on every row it writes.
# `horizon`: the newest number whose tombstones were purged. `importing`: the import (SQLite)
# writing the user's tasks ahead of its commit, under the number `seq + 1`: rows above `seq` are
# not shown, and the user's other writes are refused meanwhile (`import_slices.py`).
# `tasks`: how many tasks the user has, kept by every write that adds or deletes one, so that
# the cap on a user's tasks is checked without counting them (a count took PostgreSQL 12-25 ms
# per create for a user of 100,000 tasks).
user_changes = Table(
    "user_changes",
    metadata,
    _user_id(),
    Column("seq", BigInteger, nullable=False),
    Column("horizon", BigInteger, nullable=False),
    Column("importing", String(64), nullable=True),
    Column("tasks", BigInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("user_id"),
)

# What sync tells a client about a row that no longer exists; kept for a while, then purged.
tombstones = Table(
    "tombstones",
    metadata,
    _user_id(),
    Column("id", Uuid, nullable=False),
    Column("kind", SmallInteger, nullable=False),  # `todo_core.sync.ChangeKind` of the row deleted
    _change_seq(),
    Column("deleted_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "id"),
)
Index(None, tombstones.c.user_id, tombstones.c.change_seq, tombstones.c.id)
Index(None, tombstones.c.deleted_at)

# A command's idempotency key and what it answered, recorded in the command's transaction.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _user_id(),
    Column("key", _binary_text(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", SmallInteger, nullable=True),  # null until the command's answer is recorded
    Column("headers", JSON, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "key"),
)
Index(None, idempotency_keys.c.recorded_at)

# A user's calendar subscription links: only a hash of each secret (`todo_core.calendar_feed`).
# A feed URL names its owner, so the lookup by hash is within one user's rows too.
calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    _user_id(),
    Column("id", Uuid, nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "id"),
)
Index(None, calendar_feeds.c.user_id, calendar_feeds.c.secret_hash, unique=True)

webhooks = Table(
    "webhooks",
    metadata,
    _user_id(),
    Column("id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    #: The event types it wants, comma-separated (`task.created,task.deleted`).
    Column("events", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    PrimaryKeyConstraint("user_id", "id"),
)

#: The outbox: one row per event per endpoint, written in the transaction of the change.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _user_id(),
    Column("webhook_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    #: The task a `reminder.due` is for (due at its `remind_at`): what a change of the task cancels.
    Column("task_id", Uuid, nullable=True),
    PrimaryKeyConstraint("user_id", "webhook_id", "event_id"),
)
#: What the delivery loop claims: the pending ones, soonest due first.
Index(None, webhook_deliveries.c.state, webhook_deliveries.c.next_attempt_at)
#: An endpoint's latest deliveries.
Index(None, webhook_deliveries.c.user_id, webhook_deliveries.c.webhook_id, webhook_deliveries.c.created_at)
#: A task's pending reminders.
Index(None, webhook_deliveries.c.user_id, webhook_deliveries.c.task_id)

#: Reminders not yet due: one row per open task whose `remind_at` is ahead, written with the task.
#: When it falls due, one process claims it (and deletes it): from that one claim come the
#: `reminder.due` deliveries of the user's endpoints and the `reminder` event of their streams.
reminders = Table(
    "reminders",
    metadata,
    _user_id(),
    Column("event_id", Uuid, nullable=False),
    Column("task_id", Uuid, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    #: The `reminder.due` event's JSON, as a webhook receives it.
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "event_id"),
)
#: What falls due next, across users (the delivery loop's claim and its wait).
Index(None, reminders.c.due_at)
#: A task's pending reminder (what a change of the task cancels).
Index(None, reminders.c.user_id, reminders.c.task_id)

# PostgreSQL-only trigram indexes behind `q` search; made by the migrations, not declared
# here, because SQLite has no such index. The schema test knows to expect them.
POSTGRES_ONLY_INDEXES = frozenset({"ix_tasks_title_trgm", "ix_tasks_description_trgm"})
