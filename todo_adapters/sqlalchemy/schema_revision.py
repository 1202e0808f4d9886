"""Which Alembic revision the database's schema is at, as `alembic_version` records it: what
readiness compares with the newest revision the code knows (todo_api/schema_gate.py).

One row of one small table that `todo migrate` writes; the table is not the application's (it
is in no user's shard), so the read is the coordinator's alone on a distributed database.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_adapters.sqlalchemy.engine import for_reads
from todo_adapters.sqlalchemy.faults import schema_is_missing
from todo_adapters.sqlalchemy.psycopg import PostgresPool
from todo_core.errors import SchemaMissing, StorageUnavailable

_READ = "SELECT version_num FROM alembic_version"


class PostgresSchemaRevision:
    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def current(self) -> str | None:
        """The revision the schema is at; None when it has none (never migrated).

        :raises StorageUnavailable: the database cannot be reached.
        """
        try:
            async with self._pool.connection() as connection:
                row = await (await connection.execute(_READ)).fetchone()
        except SchemaMissing:
            return None
        return None if row is None else str(row[0])


class SqliteSchemaRevision:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = for_reads(engine)

    async def current(self) -> str | None:
        """The revision the schema is at; None when it has none (never migrated).

        :raises StorageUnavailable: the database cannot be reached.
        """
        try:
            async with self._engine.connect() as connection:
                row = (await connection.exec_driver_sql(_READ)).first()
        except DBAPIError as error:
            if schema_is_missing(error):
                return None
            raise StorageUnavailable("the database cannot be reached") from error
        except OSError as error:
            raise StorageUnavailable("the database cannot be reached") from error
        return None if row is None else str(row[0])
