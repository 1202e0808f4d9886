"""A pytest plugin: every SQL statement the service sends to PostgreSQL while the API tests run is
recorded, and the run fails, listing them, if any would not go to one shard (`shard_routing`).

Where statements leave the service for PostgreSQL, and how each is seen here:
- psycopg, directly (`PostgresPool`: units of work, task views, the change feed; the change
  listener's own connection): every `AsyncCursor.execute`, `executemany` and `stream`, which
  `AsyncConnection.execute` goes through too, is recorded with its parameters.
- SQLAlchemy's engines (`create_engine`; on PostgreSQL only Alembic uses one today): its
  `before_cursor_execute` event, on every engine. Their psycopg cursors are left to it.
What is not recorded: transaction control that psycopg sends itself (`connection.transaction()`,
`commit()`: no table), the synchronous psycopg the tests use to make databases, and statements
sent while Alembic runs (migrations are the schema's, run once by `todo migrate`).

Why a check at the end of the session rather than in one test: every API test, present and
future, runs on PostgreSQL (the `app` fixture is parametrised over both databases), so every
route another engineer adds is covered by the tests that come with it, with no list of routes
to keep. The end of the session is the one point that has seen them all; the check runs there
and turns the session's exit status into a failure. `test_shard_routing.py` shows that it does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.shard_routing import unrouted

#: Listed on failure: enough to recognise each statement, not a whole page per statement.
_SHOWN = 400


@dataclasses.dataclass
class SentStatements:
    """What the service sent while recording, first seen in which test."""

    recording_for: str | None = None
    #: (SQL, why it would not route to one shard) → the first test that sent it.
    unrouted: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    #: Every distinct statement recorded.
    seen: set[str] = dataclasses.field(default_factory=set)

    @contextlib.contextmanager
    def recording(self, test: str) -> Iterator[None]:
        """Record what is sent in the block, on behalf of `test`."""
        self.recording_for = test
        try:
            yield
        finally:
            self.recording_for = None

    def sent(self, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None) -> None:
        if self.recording_for is None or _migrating():
            return
        self.seen.add(sql)
        reason = unrouted(sql, parameters)
        if reason is not None:
            self.unrouted.setdefault((sql, reason), self.recording_for)

    def report(self) -> list[str]:
        return [
            f"{' '.join(sql.split())[:_SHOWN]}\n    why: {reason}\n    first sent in: {test}"
            for (sql, reason), test in self.unrouted.items()
        ]


STATEMENTS = SentStatements()
#: psycopg connections that SQLAlchemy drives: their statements are recorded by its event.
_DRIVEN_BY_SQLALCHEMY: weakref.WeakSet[Any] = weakref.WeakSet()


def _migrating() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("alembic."):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _sql_text(query: Any, connection: psycopg.AsyncConnection[Any]) -> str:
    if isinstance(query, bytes):
        return query.decode()
    if isinstance(query, str):
        return query
    return str(query.as_string(connection))


def _recording(method: Callable[..., Any], *, many: bool = False) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(cursor: psycopg.AsyncCursor[Any], query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        connection = cursor.connection
        if connection not in _DRIVEN_BY_SQLALCHEMY:
            sql = _sql_text(query, connection)
            for one in params if many else [params]:
                STATEMENTS.sent(sql, one)
        return method(cursor, query, params, *args, **kwargs)

    return wrapper


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, psycopg.AsyncConnection):
        _DRIVEN_BY_SQLALCHEMY.add(driver)


def _before_cursor_execute(
    connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    if connection.dialect.name != "postgresql":
        return
    for one in parameters if executemany else [parameters]:
        STATEMENTS.sent(statement, one)


_PATCHED = {"execute": False, "executemany": True, "stream": False}


def pytest_configure(config: pytest.Config) -> None:
    for name, many in _PATCHED.items():
        setattr(psycopg.AsyncCursor, name, _recording(getattr(psycopg.AsyncCursor, name), many=many))
    event.listen(Engine, "connect", _on_connect)
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)


def pytest_unconfigure(config: pytest.Config) -> None:
    event.remove(Engine, "before_cursor_execute", _before_cursor_execute)
    event.remove(Engine, "connect", _on_connect)
    for name in _PATCHED:
        setattr(psycopg.AsyncCursor, name, getattr(psycopg.AsyncCursor, name).__wrapped__)


@pytest.fixture(scope="session")
def sent_statements() -> SentStatements:
    """The statements the service sends while a test records them (see `recording`)."""
    return STATEMENTS


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = STATEMENTS.report()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not found:
        if STATEMENTS.seen and reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                f"{len(STATEMENTS.seen)} distinct statements sent to PostgreSQL: each goes to one shard"
            )
        return
    if reporter is not None:
        reporter.write_sep("=", f"{len(found)} statement(s) would not go to one shard of a Citus cluster", red=True)
        for line in found:
            reporter.write_line(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
