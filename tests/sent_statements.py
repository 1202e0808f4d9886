"""A pytest plugin: every SQL statement the service sends to PostgreSQL while the API tests run is
recorded, and the run fails, listing them, if any would not go to one shard (`shard_routing`).

Where statements leave the service for PostgreSQL, and how each is seen here:
- psycopg, directly (`PostgresPool`: units of work, task views, the change feed; the change
  listener's own connection): every `AsyncCursor.execute`, `executemany`, `stream` and `copy`,
  which `AsyncConnection.execute` goes through too, is recorded with its parameters. (A COPY
  into a distributed table is reported: its text cannot show that its rows are one user's.)
- SQLAlchemy's engines (`create_engine`; on PostgreSQL only Alembic uses one today): its
  `before_cursor_execute` event, on every engine. Their psycopg cursors are left to it.
While a test is `capturing`, every statement sent to either database (SQLite too) is also
listed, in order: what one request reads.
What is not recorded: transaction control that psycopg sends itself (`connection.transaction()`,
`commit()`: no table), the synchronous psycopg the tests use to make databases, and statements
sent while Alembic runs (migrations are the schema's, run once by `todo migrate`).

Why a check at the end of the session rather than in one test: every API test, present and
future, runs on PostgreSQL (the `app` fixture is parametrised over both databases), so every
route another engineer adds is covered by the tests that come with it, with no list of routes
to keep. The end of the session is the one point that has seen them all; the check runs there
and turns the session's exit status into a failure. `test_shard_routing.py` shows that it does.
So that a route tested on SQLite alone cannot slip by, the routes each PostgreSQL app served
are recorded too: when the whole API suite ran and passed, every operation of those apps'
OpenAPI document must have been requested on PostgreSQL at least once.
Under pytest-xdist each worker records what its own tests sent and hands it to the controller at
the end of its session; the controller, which has seen every test's outcome, checks the union.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.shard_routing import unrouted

_VERBS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
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
    #: The documented operations (method, path) of the PostgreSQL apps that served a request,
    #: and those requested.
    operations: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    requested: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    _apps: weakref.WeakSet[Any] = dataclasses.field(default_factory=weakref.WeakSet)
    #: The documented operations of the apps of each set of routes (path, methods) seen.
    _documented: dict[frozenset[tuple[str, frozenset[str]]], frozenset[tuple[str, str]]] = dataclasses.field(
        default_factory=dict
    )
    #: Every statement sent to any database (SQLite too) while `capturing`, in order.
    _captured: list[str] | None = None

    @contextlib.contextmanager
    def recording(self, test: str) -> Iterator[None]:
        """Record what is sent in the block, on behalf of `test`."""
        self.recording_for = test
        try:
            yield
        finally:
            self.recording_for = None

    @contextlib.contextmanager
    def capturing(self) -> Iterator[list[str]]:
        """The statements the service sends in the block, to PostgreSQL or SQLite, in order."""
        self._captured = captured = []
        try:
            yield captured
        finally:
            self._captured = None

    def captured(self, sql: str) -> None:
        if self._captured is not None:
            self._captured.append(sql)

    def sent(self, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None) -> None:
        self.captured(sql)
        if self.recording_for is None or _migrating():
            return
        self.seen.add(sql)
        reason = unrouted(sql, parameters)
        if reason is not None:
            self.unrouted.setdefault((sql, reason), self.recording_for)

    def served(self, app: Any, method: str, path: str) -> None:
        container = getattr(getattr(app, "state", None), "container", None)
        if self.recording_for is None or container is None or container.backend() != "postgresql":
            return
        self.requested.add((method, path))
        if app not in self._apps:
            self._apps.add(app)
            # The app's OpenAPI document takes ~0.5 s to build, and every test builds an app:
            # built once per set of routes (the same for every app `create_app` makes).
            routes = frozenset(
                (route.path, frozenset(route.methods or ()))
                for route in app.routes
                if getattr(route, "include_in_schema", False)
            )
            operations = self._documented.get(routes)
            if operations is None:
                paths = app.openapi()["paths"]
                operations = self._documented[routes] = frozenset(
                    (verb.upper(), path) for path, item in paths.items() for verb in item if verb in _VERBS
                )
            self.operations |= operations

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


def _serving(handle: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handle)
    def wrapper(route: APIRoute, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "http" and scope["method"] in route.methods:
            STATEMENTS.served(scope.get("app"), scope["method"], route.path)
        return handle(route, scope, receive, send)

    return wrapper


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, psycopg.AsyncConnection):
        _DRIVEN_BY_SQLALCHEMY.add(driver)


def _before_cursor_execute(
    connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    if connection.dialect.name != "postgresql":
        STATEMENTS.captured(statement)
        return
    for one in parameters if executemany else [parameters]:
        STATEMENTS.sent(statement, one)


_PATCHED = {"execute": False, "executemany": True, "stream": False, "copy": False}


def pytest_configure(config: pytest.Config) -> None:
    for name, many in _PATCHED.items():
        setattr(psycopg.AsyncCursor, name, _recording(getattr(psycopg.AsyncCursor, name), many=many))
    event.listen(Engine, "connect", _on_connect)
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
    APIRoute.handle = _serving(APIRoute.handle)  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    APIRoute.handle = APIRoute.handle.__wrapped__  # type: ignore[attr-defined, method-assign]
    event.remove(Engine, "before_cursor_execute", _before_cursor_execute)
    event.remove(Engine, "connect", _on_connect)
    for name in _PATCHED:
        setattr(psycopg.AsyncCursor, name, getattr(psycopg.AsyncCursor, name).__wrapped__)


@pytest.fixture(scope="session")
def sent_statements() -> SentStatements:
    """The statements the service sends while a test records them (see `recording`)."""
    return STATEMENTS


_partial = False
#: Under pytest-xdist (`make test`), what each worker saw, merged by the controller, which reports.
_WORKER_OUTPUT = "sent_statements"
_api_test_files: set[str] = set()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("api_tests", "the folder of the API tests, from the root folder", default="tests/api")


def _api_tests(config: pytest.Config) -> Path:
    return Path(config.rootpath) / str(config.getini("api_tests"))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    global _partial
    _partial = _partial or any(_api_tests(item.config) in item.path.parents for item in items)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent under `-p no:xdist`
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the controller of an xdist run: merge what a worker recorded and collected."""
    global _partial
    shipped = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if shipped is None:
        return  # the worker died before the end of its session: its tests are reported failed
    for sql, reason, test in shipped["unrouted"]:
        STATEMENTS.unrouted.setdefault((sql, reason), test)
    STATEMENTS.seen.update(shipped["seen"])
    STATEMENTS.operations.update(map(tuple, shipped["operations"]))
    STATEMENTS.requested.update(map(tuple, shipped["requested"]))
    _api_test_files.update(shipped["collected"])
    _partial = _partial or shipped["partial"]


def _whole_api_suite_passed(session: pytest.Session) -> bool:
    """Every API test was selected, ran and passed (not `-k`, a test id, or a stop at a failure)."""
    ran = {str(item.path) for item in session.items} | _api_test_files
    every = {str(path) for path in _api_tests(session.config).glob("test_*.py")}
    selected = not _partial and not any("::" in argument for argument in session.config.args)
    return selected and every <= ran and session.testsfailed == 0 and not session.shouldstop


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _is_worker(session.config):
        # A worker ran some of the tests: the controller, which saw them all, checks and reports.
        session.config.workeroutput[_WORKER_OUTPUT] = {  # type: ignore[attr-defined]
            "unrouted": [[sql, reason, test] for (sql, reason), test in STATEMENTS.unrouted.items()],
            "seen": sorted(STATEMENTS.seen),
            "operations": sorted(STATEMENTS.operations),
            "requested": sorted(STATEMENTS.requested),
            "collected": sorted({str(item.path) for item in session.items}),
            "partial": _partial,
        }
        return
    unrouted = STATEMENTS.report()
    untested = sorted(STATEMENTS.operations - STATEMENTS.requested) if _whole_api_suite_passed(session) else []
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        if unrouted:
            reporter.write_sep(
                "=", f"{len(unrouted)} statement(s) would not go to one shard of a Citus cluster", red=True
            )
            for line in unrouted:
                reporter.write_line(line)
        if untested:
            reporter.write_sep("=", f"{len(untested)} operation(s) no API test requested on PostgreSQL", red=True)
            for method, path in untested:
                reporter.write_line(f"{method} {path}")
        if STATEMENTS.seen and not (unrouted or untested):
            reporter.write_line(
                f"{len(STATEMENTS.seen)} distinct statements sent to PostgreSQL: each goes to one shard"
            )
    if unrouted or untested:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
