"""The migrations: each one can be undone and redone, and together they build the schema the code declares.

Every test gets a database of its own (the stairway drops tables), on SQLite and on PostgreSQL.
Migrations run from sync code: migrations/env.py starts its own event loop with asyncio.run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, make_url

from todo_adapters.sqlalchemy.engine import create_engine
from todo_adapters.sqlalchemy.mapping import TASKS
from todo_adapters.sqlalchemy.tables import POSTGRES_ONLY_INDEXES, metadata
from todo_api.cli import PROJECT_ROOT, migrate
from todo_core.task import Task, TaskFields

BACKENDS = ["sqlite", "postgres"]
APPLICATION_TABLES = {
    "tasks",
    "task_tags",
    "categories",
    "user_changes",
    "tombstones",
    "idempotency_keys",
    "user_settings",
}
SEEDED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped (even while connected to) on the way out."""
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    server = make_url(server_url)
    libpq = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of this test's own, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_server_url")  # skips or fails without a server
    with fresh_postgres_database(server_url) as url:
        yield url


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def revisions_oldest_first() -> list[tuple[str, str]]:
    """Each revision with the one it revises ("base" for the first)."""
    script = ScriptDirectory.from_config(alembic_config("unused://"))
    walked = [(revision.revision, revision.down_revision or "base") for revision in script.walk_revisions()]
    return list(reversed(walked))


def schema_state(url: str) -> tuple[set[str], str | None]:
    """The application tables present and the revision the database says it is at."""

    def read(connection: Connection) -> tuple[set[str], str | None]:
        tables = set(inspect(connection).get_table_names()) & APPLICATION_TABLES
        return tables, MigrationContext.configure(connection).get_current_revision()

    async def run() -> tuple[set[str], str | None]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_the_revisions_form_one_line_ending_at_head() -> None:
    revisions = revisions_oldest_first()
    assert [down for _, down in revisions] == ["base", *[rev for rev, _ in revisions[:-1]]]
    assert ScriptDirectory.from_config(alembic_config("unused://")).get_heads() == [revisions[-1][0]]


def test_every_revision_can_be_undone_and_redone(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    states: dict[str, tuple[set[str], str | None]] = {}
    for revision, down_revision in revisions_oldest_first():
        command.upgrade(config, revision)
        states[revision] = schema_state(empty_database_url)
        assert states[revision][1] == revision

        command.downgrade(config, down_revision)
        expected_before = states.get(down_revision, (set(), None))
        assert schema_state(empty_database_url) == expected_before, f"downgrading {revision} left the schema changed"

        command.upgrade(config, revision)
        assert schema_state(empty_database_url) == states[revision], f"redoing {revision} built a different schema"
    command.upgrade(config, "head")
    assert schema_state(empty_database_url) == (APPLICATION_TABLES, revisions_oldest_first()[-1][0])


def test_downgrading_everything_leaves_no_application_table(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert schema_state(empty_database_url) == (set(), None)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def _index_names(connection: Connection, table: str) -> set[str]:
    return {index["name"] for index in inspect(connection).get_indexes(table) if index["name"]}


def _describe(difference: Any) -> str:
    if isinstance(difference, tuple) and difference and difference[0] in {"add_index", "remove_index"}:
        return f"{difference[0]} {difference[1].name}"
    return repr(difference)


async def test_migrated_schema_matches_the_declared_tables(empty_database_url: str) -> None:
    await asyncio.to_thread(migrate, empty_database_url)  # env.py runs its own event loop
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            task_indexes = await connection.run_sync(_index_names, "tasks")
            dialect = connection.dialect.name
    finally:
        await engine.dispose()

    unexplained = [
        _describe(difference)
        for difference in differences
        if not (
            dialect == "postgresql"
            and isinstance(difference, tuple)
            and difference[0] == "remove_index"
            and difference[1].name in POSTGRES_ONLY_INDEXES
        )
    ]
    assert unexplained == []
    if dialect == "postgresql":
        assert task_indexes >= POSTGRES_ONLY_INDEXES
    else:
        assert not task_indexes & POSTGRES_ONLY_INDEXES


def test_upgrading_from_the_first_revision_keeps_existing_tasks(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    first, _ = revisions_oldest_first()[0]
    command.upgrade(config, first)
    task_id = uuid.uuid4()

    async def insert_seed_task() -> None:
        engine = create_engine(empty_database_url)
        try:
            async with engine.begin() as connection:
                # Only the columns the first revision has: the declared table knows how to bind them.
                await connection.execute(
                    metadata.tables["tasks"]
                    .insert()
                    .values(
                        user_id="seed-user",
                        id=task_id,
                        title="Buy MILK Straße",
                        description="",
                        completed=False,
                        created_at=SEEDED_AT,
                        updated_at=SEEDED_AT,
                        version=3,
                    )
                )
        finally:
            await engine.dispose()

    async def read_task() -> dict[str, Any]:
        engine = create_engine(empty_database_url)
        try:
            async with engine.connect() as connection:
                row = (await connection.execute(metadata.tables["tasks"].select())).mappings().one()
                return dict(row)
        finally:
            await engine.dispose()

    asyncio.run(insert_seed_task())
    command.upgrade(config, "head")
    row = asyncio.run(read_task())
    assert (row["id"], row["title"], row["version"], row["created_at"]) == (task_id, "Buy MILK Straße", 3, SEEDED_AT)
    assert (row["title_key"], row["priority"], row["tags"], row["due_at"]) == ("buy milk strasse", 0, [], None)
    assert row["time_zone"] == "UTC"  # the zone its repeats were stepped in before time zones


def test_the_structure_revision_orders_existing_tasks_as_they_were_created(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0004")
    tasks = metadata.tables["tasks"]
    # (user, seconds after SEEDED_AT): inserted out of creation order, two users interleaved.
    seeds = [("ann", 30), ("bo", 5), ("ann", 10), ("ann", 20), ("bo", 1)]
    ids = [uuid.uuid4() for _ in seeds]

    async def insert_tasks() -> None:
        engine = create_engine(empty_database_url)
        try:
            async with engine.begin() as connection:
                for task_id, (user, seconds) in zip(ids, seeds, strict=True):
                    at = SEEDED_AT + timedelta(seconds=seconds)
                    values = {
                        "user_id": user, "id": task_id, "title": f"{user} {seconds}", "title_key": f"{user} {seconds}",
                        "description": "", "completed": False, "priority": 0, "tags": [], "time_zone": "UTC",
                        "due_at": at, "created_at": at, "updated_at": at, "version": 1, "change_seq": 1,
                    }  # fmt: skip
                    await connection.execute(tasks.insert().values(**values))
        finally:
            await engine.dispose()

    async def read_tasks() -> list[dict[str, Any]]:
        engine = create_engine(empty_database_url)
        try:
            async with engine.connect() as connection:
                query = tasks.select().order_by(tasks.c.user_id, tasks.c.position)
                return [dict(row) for row in (await connection.execute(query)).mappings()]
        finally:
            await engine.dispose()

    asyncio.run(insert_tasks())
    command.upgrade(config, "head")
    rows = asyncio.run(read_tasks())
    assert [row["title"] for row in rows] == ["ann 10", "ann 20", "ann 30", "bo 1", "bo 5"]
    assert [row["position"] for row in rows] == ["a0", "a1", "a2", "a0", "a1"]
    assert all(row["parent_id"] is None and row["due_date"] is None for row in rows)
    assert all(row["due_key"] == row["due_at"] for row in rows)  # lists sort them as before


def test_the_task_count_revision_counts_each_users_tasks_but_not_an_imports_written_ahead(
    empty_database_url: str,
) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0009")
    tasks, changes = metadata.tables["tasks"], metadata.tables["user_changes"]
    # (user, change number): ann's number is 3, so her task at 4 is an interrupted import's (SQLite).
    seeds = [("ann", 1), ("ann", 3), ("ann", 4), ("bo", 2)]

    async def insert_rows() -> None:
        engine = create_engine(empty_database_url)
        try:
            async with engine.begin() as connection:
                for user, seq in (("ann", 3), ("bo", 2), ("cy", 5)):
                    await connection.execute(
                        text("INSERT INTO user_changes (user_id, seq, horizon) VALUES (:user, :seq, 0)"),
                        {"user": user, "seq": seq},
                    )
                for user, seq in seeds:
                    task = Task.new(user, TaskFields(title=f"{user} {seq}").validated(), SEEDED_AT)
                    await connection.execute(tasks.insert().values(**TASKS.to_row(task), change_seq=seq))
        finally:
            await engine.dispose()

    async def read_counts() -> dict[str, int]:
        engine = create_engine(empty_database_url)
        try:
            async with engine.connect() as connection:
                query = select(changes.c.user_id, changes.c.tasks)
                return {str(user): int(count) for user, count in (await connection.execute(query)).all()}
        finally:
            await engine.dispose()

    asyncio.run(insert_rows())
    command.upgrade(config, "head")
    assert asyncio.run(read_counts()) == {"ann": 2, "bo": 1, "cy": 0}


def test_todo_migrate_says_what_it_did(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from todo_api.cli import main

    head, previous = revisions_oldest_first()[-1][0], revisions_oldest_first()[-2][0]
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("TODO_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("TODO_DEV_MODE", "1")
    said = []
    for prepare in (
        lambda: None,
        lambda: None,
        lambda: command.downgrade(alembic_config(empty_database_url), previous),
    ):
        prepare()
        assert main(["migrate"]) == 0
        said.append(capsys.readouterr().out.strip())
    assert said == [
        f"todo: made the schema (revision {head})",
        f"todo: the database is up to date (revision {head})",
        f"todo: upgraded the database from revision {previous} to {head}",
    ]
