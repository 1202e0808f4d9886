"""How the repositories' statements run: through SQLAlchemy (SQLite), or straight on psycopg
in pipeline mode (PostgreSQL).

The repositories build every statement once with SQLAlchemy Core and hand it to an
`Executor` with its values. On SQLite, SQLAlchemy runs it (its types turn UUIDs and instants
into what SQLite stores). On PostgreSQL, the statement is compiled once to SQL text and sent
by psycopg, whose own types need no conversion; in pipeline mode a command's statements and
its COMMIT travel together instead of waiting for one another (a create is one round trip).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Json
from sqlalchemy import JSON, Insert, bindparam
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled

POSTGRESQL = PGDialect_psycopg()  # type: ignore[no-untyped-call]

Values = Mapping[str, Any]


class DuplicateKey(Exception):
    """A statement run `guarded` broke a uniqueness rule; the transaction goes on."""


class Executor(Protocol):
    async def rows(self, statement: ClauseElement, values: Values) -> Sequence[Sequence[Any]]:
        """Run a query; return its rows, columns in the statement's order."""
        ...

    async def run(self, statement: ClauseElement, values: Values | Sequence[Values]) -> None:
        """Run a statement (once per item of a sequence of values); its outcome may be learned
        only when the transaction commits."""
        ...

    async def count(self, statement: ClauseElement, values: Values) -> int:
        """Run a statement; return how many rows it touched."""
        ...

    def guarded(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A block whose statements, should one break a uniqueness rule, are undone alone:
        `DuplicateKey` is raised and the transaction stays usable."""
        ...


class SqlAlchemyExecutor:
    """Statements on a SQLAlchemy connection; with `opening` and no connection, on the one
    `opening()` gives at the first statement."""

    def __init__(
        self, connection: AsyncConnection | None, *, opening: Callable[[], Awaitable[AsyncConnection]] | None = None
    ) -> None:
        assert connection is not None or opening is not None
        self._connection = connection
        self._opening = opening

    async def rows(self, statement: ClauseElement, values: Values) -> Sequence[Sequence[Any]]:
        connection = self._connection or await self._open()
        return (await connection.execute(statement, values)).all()  # type: ignore[call-overload, no-any-return]

    async def run(self, statement: ClauseElement, values: Values | Sequence[Values]) -> None:
        connection = self._connection or await self._open()
        await connection.execute(statement, values)  # type: ignore[call-overload]

    async def count(self, statement: ClauseElement, values: Values) -> int:
        connection = self._connection or await self._open()
        return (await connection.execute(statement, values)).rowcount  # type: ignore[call-overload, no-any-return]

    @contextlib.asynccontextmanager
    async def guarded(self) -> AsyncIterator[None]:
        connection = self._connection or await self._open()
        try:
            async with connection.begin_nested():
                yield
        except IntegrityError as error:
            raise DuplicateKey() from error

    async def _open(self) -> AsyncConnection:
        assert self._opening is not None
        self._connection = await self._opening()
        return self._connection


class PsycopgExecutor:
    """Statements on one psycopg connection, in pipeline mode inside a transaction (or in
    autocommit mode, for a unit of work that only reads)."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], pipeline: psycopg.AsyncPipeline | None) -> None:
        self._connection = connection
        self._pipeline = pipeline

    async def rows(self, statement: ClauseElement, values: Values) -> Sequence[Sequence[Any]]:
        cursor = await self._execute(statement, values)
        return await cursor.fetchall()

    async def run(self, statement: ClauseElement, values: Values | Sequence[Values]) -> None:
        if isinstance(values, Mapping):
            await self._execute(statement, values)
        elif len(values) > _MULTI_ROW_MOST:
            # Many rows (an import's): one statement compiled once, its rows sent together by
            # psycopg (in pipeline mode), rather than a statement of thousands of values that
            # takes longer to build than to run.
            compiled = compiled_for_postgresql(statement, values[0])
            async with self._connection.cursor() as cursor:
                await cursor.executemany(compiled.sql, [compiled.parameters(one) for one in values])
        elif isinstance(statement, Insert) and len(values) > 1:
            # One statement for all the rows (a task's tags): one message instead of several.
            rows = _multi_row(statement, tuple(values[0]), len(values))
            await self._execute(
                rows, {f"{name}_{n}": value for n, row in enumerate(values) for name, value in row.items()}
            )
        else:
            for one in values:
                await self._execute(statement, one)

    async def count(self, statement: ClauseElement, values: Values) -> int:
        cursor = await self._execute(statement, values)
        if self._pipeline is not None:
            await self._pipeline.sync()
        return cursor.rowcount

    @contextlib.asynccontextmanager
    async def guarded(self) -> AsyncIterator[None]:
        if self._pipeline is not None:
            await self._pipeline.sync()  # the transaction is open: what follows is a savepoint
        try:
            async with self._connection.transaction():
                yield
                if self._pipeline is not None:
                    await self._pipeline.sync()
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKey() from error

    async def _execute(self, statement: ClauseElement, values: Values) -> psycopg.AsyncCursor[Any]:
        compiled = compiled_for_postgresql(statement, values)
        return await self._connection.execute(compiled.sql, compiled.parameters(values))


class _Compiled:
    def __init__(self, compiled: Compiled, names: frozenset[str]) -> None:
        self.sql = compiled.string
        binds = compiled.binds  # type: ignore[attr-defined]
        # The statement's own constants (`version + 1`), bound by SQLAlchemy, not by the caller.
        self._constants = {name: bind.effective_value for name, bind in binds.items() if name not in names}
        self._json = frozenset(name for name, bind in binds.items() if isinstance(bind.type, JSON))

    def parameters(self, values: Values) -> dict[str, Any]:
        parameters = {**self._constants, **values}
        for name in self._json & parameters.keys():
            parameters[name] = Json(parameters[name])
        return parameters


#: The most rows sent as one multi-row INSERT (a task's tags); more go through executemany.
_MULTI_ROW_MOST = 20
_MULTI_ROW: dict[tuple[int, tuple[str, ...], int], Insert] = {}


def _multi_row(statement: Insert, names: tuple[str, ...], count: int) -> Insert:
    """`statement` inserting `count` rows at once, their values named `<column>_<row>`."""
    key = (id(statement), names, count)
    found = _MULTI_ROW.get(key)
    if found is None:
        # Typed as their columns, so that a JSON column's values are sent as JSON.
        columns = statement.table.c
        rows: list[dict[str, Any]] = [
            {name: bindparam(f"{name}_{n}", type_=columns[name].type) for name in names} for n in range(count)
        ]
        found = _MULTI_ROW[key] = statement.values(rows)
    return found


_COMPILED: dict[tuple[int, frozenset[str]], tuple[ClauseElement, _Compiled]] = {}


def compiled_for_postgresql(statement: ClauseElement, values: Values) -> _Compiled:
    """The statement as PostgreSQL SQL for these value names; compiled once per statement
    (statements are built once, at import) and set of names."""
    names = frozenset(values)
    key = (id(statement), names)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=POSTGRESQL, column_keys=list(values))
        found = _COMPILED[key] = (statement, _Compiled(compiled, names))
    return found[1]
