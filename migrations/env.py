"""Alembic environment: runs migrations on the async engine our adapters use."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from todo_adapters.sqlalchemy.engine import create_engine
from todo_adapters.sqlalchemy.tables import metadata

DEFAULT_URL = "sqlite+aiosqlite:///./todo.db"


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    migration = context.get_context()
    before = migration.get_current_revision()
    with context.begin_transaction():
        context.run_migrations()
    # What `todo migrate` reports: from which revision to which.
    context.config.attributes["revisions"] = (before, migration.get_current_revision())


async def _run() -> None:
    url = context.config.attributes.get("database_url") or os.environ.get("TODO_DATABASE_URL") or DEFAULT_URL
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
asyncio.run(_run())
