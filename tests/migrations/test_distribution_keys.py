"""The migrated schema can be distributed by `user_id` (Citus) as it is: every key and unique
index starts with `user_id`, every foreign key pairs it (see `tests/shard_keys.py`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    inspect,
)
from sqlalchemy.engine import Connection

from tests.migrations.test_schema import APPLICATION_TABLES, fresh_postgres_database
from tests.shard_keys import NOT_DISTRIBUTED, distribution_key_violations
from todo_adapters.sqlalchemy.engine import create_engine as create_async_engine
from todo_api.cli import migrate


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, made by the migrations alone."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
        migrate(url)
        yield url
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    with fresh_postgres_database(server_url) as url:
        migrate(url)
        yield url


def _read(url: str) -> tuple[set[str], list[str]]:
    def read(connection: Connection) -> tuple[set[str], list[str]]:
        inspector = inspect(connection)
        return set(inspector.get_table_names()), distribution_key_violations(inspector)

    async def run() -> tuple[set[str], list[str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_every_key_of_the_migrated_schema_starts_with_the_user(migrated_database_url: str) -> None:
    tables, violations = _read(migrated_database_url)

    assert tables >= APPLICATION_TABLES | {"alembic_version"}  # the check saw the real schema
    assert violations == []


def test_the_citus_statements_distribute_every_table_of_the_migrated_schema(migrated_database_url: str) -> None:
    tables, _ = _read(migrated_database_url)
    statements = (Path(__file__).parents[2] / "deploy" / "citus" / "distribute.sql").read_text()
    distributed = set(re.findall(r"create_distributed_table\('(\w+)', 'user_id'", statements))
    assert distributed == tables - NOT_DISTRIBUTED
    assert statements.count("colocate_with => 'tasks'") == len(distributed) - 1  # one shard holds a user's rows


def _violations_of(metadata: MetaData) -> list[str]:
    engine = create_engine("sqlite://")
    try:
        metadata.create_all(engine)
        with engine.connect() as connection:
            return distribution_key_violations(inspect(connection))
    finally:
        engine.dispose()


def test_the_check_names_every_key_that_does_not_start_with_the_user() -> None:
    metadata = MetaData()
    Table("owners", metadata, Column("user_id", String), Column("id", Integer), PrimaryKeyConstraint("user_id", "id"))
    Table(
        "notes",
        metadata,
        Column("user_id", String),
        Column("id", Integer),
        Column("slug", String),
        Column("code", String),
        Column("owner_id", Integer),
        PrimaryKeyConstraint("id", "user_id", name="pk_notes"),
        UniqueConstraint("slug", name="uq_notes_slug"),
        ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_notes_owner"),
        ForeignKeyConstraint(["user_id", "owner_id"], ["owners.id", "owners.user_id"], name="fk_notes_crossed"),
    )
    Index("ix_notes_code", metadata.tables["notes"].c.code, metadata.tables["notes"].c.user_id, unique=True)
    Table("keyless", metadata, Column("user_id", String))

    violations = _violations_of(metadata)

    assert len(violations) == 6, violations
    assert [v.split(" ", 3)[:3] for v in violations] == [
        ["keyless:", "primary", "key"],
        ["notes:", "primary", "key"],
        ["notes:", "unique", "constraint"],
        ["notes:", "unique", "index"],
        ["notes:", "foreign", "key"],
        ["notes:", "foreign", "key"],
    ]
    assert {"uq_notes_slug", "ix_notes_code"} <= {word for v in violations for word in v.split()}


def test_the_check_accepts_keys_and_references_that_start_with_the_user() -> None:
    metadata = MetaData()
    Table("owners", metadata, Column("user_id", String), Column("id", Integer), PrimaryKeyConstraint("user_id", "id"))
    notes = Table(
        "notes",
        metadata,
        Column("user_id", String),
        Column("id", Integer),
        Column("slug", String),
        Column("parent_id", Integer),
        Column("owner_id", Integer),
        PrimaryKeyConstraint("user_id", "id"),
        UniqueConstraint("user_id", "slug"),
        # As tasks will reference their parent: (user_id, parent_id) → (user_id, id).
        ForeignKeyConstraint(["user_id", "parent_id"], ["notes.user_id", "notes.id"]),
        ForeignKeyConstraint(["owner_id", "user_id"], ["owners.id", "owners.user_id"]),
    )
    Index("ix_notes_owner", notes.c.user_id, notes.c.owner_id, unique=True)
    Index("ix_notes_slug", notes.c.slug)  # not unique: any order will do

    assert _violations_of(metadata) == []
