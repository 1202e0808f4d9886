"""The read side of tasks (the `TaskViews` port): one statement each, outside any transaction.

Two implementations of one contract, on the same statements (`listing.py`):

- `PostgresTaskViews` runs them on the psycopg pool in autocommit mode, and lets
  PostgreSQL render each row as the task's JSON (`row_to_json`): Python passes the text on
  instead of turning every value into an object and back into text. Statements are prepared
  by psycopg after a few runs.
- `SqliteTaskViews` runs them through SQLAlchemy (the SQLite default) in autocommit mode, so a
  read never takes SQLite's write lock, and lets SQLite render the JSON (`json_object`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Select,
    String,
    Text,
    Uuid,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_adapters.sqlalchemy.engine import for_reads, sqlite_writers
from todo_adapters.sqlalchemy.execution import POSTGRESQL
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.listing import Shape, page_statement, parameters
from todo_adapters.sqlalchemy.mapping import TASK_VIEW_COLUMNS
from todo_adapters.sqlalchemy.psycopg import PostgresPool
from todo_adapters.sqlalchemy.tables import UTCDateTime, tasks
from todo_adapters.sqlalchemy.visibility import committed_tasks
from todo_core.query import TaskQuery
from todo_core.views import VersionedView, ViewPage, position_of_json

#: How long a read on SQLite lets a write transaction of its process finish first (see
#: `SqliteTaskViews`): a write takes a few milliseconds when it is not kept waiting.
WRITER_FIRST_SECONDS = 0.02

_ONE_TASK = select(*TASK_VIEW_COLUMNS).where(
    tasks.c.user_id == bindparam("user_id"), tasks.c.id == bindparam("task_id", type_=tasks.c.id.type)
)


class _RenderedTaskViews:
    """Views that the database renders as JSON text, one object per row: Python wraps each
    text as it is (`orjson.Fragment`) and reads only the last row of a page, for its cursor."""

    def __init__(self) -> None:
        self._pages: dict[Shape, Any] = {}
        # On SQLite, an import's tasks written ahead of its commit are not shown.
        one_task = _ONE_TASK.where(committed_tasks()) if self._dialect == "sqlite" else _ONE_TASK
        self._one_task = self._rendered(one_task, with_version=True)

    async def list_for_user(self, user_id: str, query: TaskQuery) -> ViewPage:
        shape = Shape.of(query)
        statement = self._pages.get(shape)
        if statement is None:
            statement = self._pages[shape] = self._rendered(page_statement(shape, self._dialect))
        rows = await self._all(statement, parameters(user_id, query))
        more = len(rows) > query.limit
        items = [orjson.Fragment(row[0]) for row in rows[: query.limit]]
        after = position_of_json(query, orjson.loads(rows[query.limit - 1][0])) if more else None
        return ViewPage(items, after)

    async def get(self, user_id: str, task_id: UUID) -> VersionedView | None:
        rows = await self._all(self._one_task, {"user_id": user_id, "task_id": task_id})
        return VersionedView(orjson.Fragment(rows[0][0]), rows[0][1]) if rows else None

    _dialect: str

    def _rendered(self, statement: Select[Any], *, with_version: bool = False) -> Any:
        """The statement, its rows rendered as JSON (and the version after, when asked), in
        the form `_all` runs."""
        raise NotImplementedError

    async def _all(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError


class SqliteTaskViews(_RenderedTaskViews):
    """Task views rendered as JSON by SQLite (`json_object`), each read in autocommit mode: no
    transaction, so a read never takes SQLite's write lock.

    A read lets a write transaction of its process finish first, for up to
    `writer_first_seconds`, so that a crowd of reads does not keep a write (and every writer
    queued behind it) holding the file's one write lock. It was added when each statement went
    to aiosqlite's thread and back (writes then took ten times as long behind reads, `make
    bench`, sqlite-mixed); statements now run on the loop's thread (`sqlite_driver`), and a
    write rarely leaves the loop mid-transaction.
    """

    _dialect = "sqlite"

    def __init__(self, engine: AsyncEngine, *, writer_first_seconds: float = WRITER_FIRST_SECONDS) -> None:
        self._engine = for_reads(engine)
        self._writers = sqlite_writers(engine)
        self._writer_first_seconds = writer_first_seconds
        super().__init__()

    def _rendered(self, statement: Select[Any], *, with_version: bool = False) -> Any:
        return _as_sqlite_json(statement, with_version=with_version)

    async def _all(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        if self._writers is not None:
            await self._writers.let_writer_finish(self._writer_first_seconds)
        try:
            async with self._engine.connect() as connection:
                return (await connection.execute(statement, values)).all()
        except (DBAPIError, OSError) as error:
            raise storage_unavailable(error) from error


class PostgresTaskViews(_RenderedTaskViews):
    """Task views rendered as JSON by PostgreSQL, each read on a pooled autocommit connection."""

    _dialect = "postgresql"

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool
        super().__init__()

    def _rendered(self, statement: Select[Any], *, with_version: bool = False) -> Any:
        return _compiled(_as_json(statement, with_version=with_version))

    async def _all(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(statement, values)
            return await cursor.fetchall()


def _as_json(statement: Select[Any], *, with_version: bool = False) -> Select[Any]:
    """Each row of `statement` as one JSON object text, named by its columns."""
    row = statement.subquery("v")
    rendered = cast(func.row_to_json(literal_column(row.name)), Text)
    return select(rendered, row.c.version) if with_version else select(rendered).select_from(row)


def _compiled(statement: Select[Any]) -> str:
    return str(statement.compile(dialect=POSTGRESQL))


def _as_sqlite_json(statement: Select[Any], *, with_version: bool = False) -> Select[Any]:
    """Each row of `statement` as one JSON object text (see `json_object_of`)."""
    row = statement.subquery("v")
    rendered = json_object_of(list(row.c), "sqlite")
    return select(rendered, row.c.version) if with_version else select(rendered).select_from(row)


def json_object_of(columns: Sequence[Any], dialect: str) -> Any:
    """An expression: the columns as one JSON object text, named by the columns, its values as
    `instant_text` and orjson write them. PostgreSQL writes them so itself. SQLite keeps
    instants as `YYYY-MM-DD HH:MM:SS.ffffff` UTC text, UUIDs as 32 hex digits and booleans as
    0 or 1 (SQLAlchemy's forms), so there each value is turned by its column's type."""
    pairs: list[Any] = []
    for column in columns:
        value = column if dialect == "postgresql" else _sqlite_json_value(column)
        pairs += [literal_column(f"'{column.name}'"), value]
    if dialect == "postgresql":
        return cast(func.json_build_object(*pairs), Text)
    return func.json_object(*pairs)


def _sqlite_json_value(column: Any) -> Any:
    if isinstance(column.type, UTCDateTime):  # 2026-01-31 09:00:00.120000 -> 2026-01-31T09:00:00.12+00:00
        whole, fraction = _text(func.substr(column, 1, 19)), _text(func.substr(column, 20))
        return func.replace(whole, " ", "T", type_=String) + func.rtrim(func.rtrim(fraction, "0"), ".") + "+00:00"
    if isinstance(column.type, Uuid):  # 32 hex digits -> 8-4-4-4-12
        groups = [_text(func.substr(column, start, length)) for start, length in _UUID_GROUPS]
        return func.lower(groups[0] + "-" + groups[1] + "-" + groups[2] + "-" + groups[3] + "-" + groups[4])
    if isinstance(column.type, Boolean):
        return func.json(case((column.is_(None), None), (column == 1, "true"), else_="false"))
    if isinstance(column.type, JSON):
        return func.json(column)
    return column


def _text(expression: Any) -> Any:
    """The expression as text, so that `+` joins it (`||`) instead of adding numbers."""
    return type_coerce(expression, String)


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
