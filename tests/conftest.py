"""Shared fixtures: databases for every backend, the app over HTTP, users and their tokens.

PostgreSQL comes from TODO_TEST_DATABASE_URL (a server URL; each run makes and drops its own
database on it), else from Testcontainers when a Docker engine answers, else its tests skip,
unless TODO_REQUIRE_POSTGRES=1, which turns the skip into a failure.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from dependency_injector import providers
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_adapters.auth import JwksKeys, mint_token
from todo_adapters.memory import (
    InMemoryChangeFeed,
    InMemoryExportReader,
    InMemoryRetention,
    InMemoryStore,
    InMemoryTaskViews,
    InMemoryUnitOfWork,
)
from todo_adapters.sqlalchemy.changes import PostgresChangeFeed, SqliteChangeFeed, SqlRetention
from todo_adapters.sqlalchemy.engine import create_engine
from todo_adapters.sqlalchemy.exports import PostgresExportReader, SqliteExportReader
from todo_adapters.sqlalchemy.psycopg import PostgresPool, PostgresUnitOfWork
from todo_adapters.sqlalchemy.purge_lock import PostgresPurgeLock, SqlitePurgeLock
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_adapters.sqlalchemy.views import PostgresTaskViews, SqliteTaskViews
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.container import Container
from todo_api.settings import Settings
from todo_core.clock import Clock
from todo_core.commands import run
from todo_core.errors import NotFound
from todo_core.portability import AccountDocument, Imported
from todo_core.ports import ChangeFeed, ExportReader, Retention, TaskViews, UnitOfWork
from todo_core.task import Task
from todo_core.use_cases.portability import import_account, prepare_import

pytest_plugins = ["pytester", "tests.sent_statements"]

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"
SQL_BACKENDS = ["sqlite", "postgres"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """How `make test` spreads the suite over pytest-xdist's workers (`--dist loadgroup`).

    A test marked `slow` (it starts processes: servers, Node.js, Chromium) runs in the group of its
    module, unless it names one (`pytest.mark.xdist_group("chromium")`): a module's module-scoped
    servers then start once, on one worker, and the tests of one group never run at once. xdist
    hands out the biggest groups first, then single tests in the order collected: slow tests go
    first, so that no worker is left with a long one at the end while the other has finished.
    """
    if getattr(config.option, "dist", "no") == "no":
        return
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("TODO_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (TODO_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server we may create databases on."""
    url = os.environ.get("TODO_TEST_DATABASE_URL")
    if url:
        yield url
        return
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
    except Exception as error:  # no Docker engine, no image: either way, no server
        _postgres_unavailable(f"TODO_TEST_DATABASE_URL is unset and Testcontainers failed ({error})")
    try:
        yield container.get_connection_url()
    finally:
        container.stop()


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg and libpq take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database of this run's own on the PostgreSQL server, dropped after."""
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(libpq_url(postgres_server_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _postgres_unavailable(f"{postgres_server_url} does not answer ({error})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        # Not UTC, as on many hosted servers: the adapter must not depend on the default.
        admin.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Tokyo'")
        url = make_url(postgres_server_url).set(drivername="postgresql+psycopg", database=name)
        try:
            rendered = url.render_as_string(hide_password=False)
            migrate(rendered)
            yield rendered
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, migrated SQLite file of this run's own."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'todo.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_views(sqlite_engine: AsyncEngine) -> TaskViews:
    return SqliteTaskViews(sqlite_engine)


@pytest.fixture(scope="session")
async def postgres_pool(postgres_url: str) -> AsyncIterator[PostgresPool]:
    pool = PostgresPool(make_url(postgres_url), size=5, timeout=10)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def postgres_views(postgres_pool: PostgresPool) -> TaskViews:
    return PostgresTaskViews(postgres_pool)


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclasses.dataclass(frozen=True)
class Backend:
    """One store seen through both sides: units of work for commands, views for queries."""

    uow_factory: UnitOfWorkFactory
    views: TaskViews
    #: Makes units of work that only read (no transaction), as the app's queries use.
    reader_factory: UnitOfWorkFactory
    #: The read side of sync, and the purge of what sync keeps for a while.
    feed: ChangeFeed
    retention: Retention
    #: The read side of export.
    exports: ExportReader


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """One backend as the app wires it: the contract suite runs once per backend."""
    if request.param == "memory":
        store = InMemoryStore()
        return Backend(
            lambda: InMemoryUnitOfWork(store),
            InMemoryTaskViews(store),
            lambda: InMemoryUnitOfWork(store, read_only=True),
            InMemoryChangeFeed(store),
            InMemoryRetention(store),
            InMemoryExportReader(store),
        )
    views: TaskViews = request.getfixturevalue(f"{request.param}_views")
    if request.param == "postgres":
        pool: PostgresPool = request.getfixturevalue("postgres_pool")
        return Backend(
            lambda: PostgresUnitOfWork(pool),
            views,
            lambda: PostgresUnitOfWork(pool, read_only=True),
            PostgresChangeFeed(pool),
            SqlRetention(
                lambda: PostgresUnitOfWork(pool),
                PostgresPurgeLock(make_url(request.getfixturevalue("postgres_url")), timeout=5),
            ),
            PostgresExportReader(pool),
        )
    engine: AsyncEngine = request.getfixturevalue(f"{request.param}_engine")
    return Backend(
        lambda: SqlAlchemyUnitOfWork(engine),
        views,
        lambda: SqlAlchemyUnitOfWork(engine, read_only=True),
        SqliteChangeFeed(engine),
        SqlRetention(lambda: SqlAlchemyUnitOfWork(engine), SqlitePurgeLock(engine.url)),
        SqliteExportReader(engine),
    )


async def imported(
    uow: UnitOfWork, reader: UnitOfWork, clock: Clock, user_id: str, document: AccountDocument
) -> Imported:
    """An import run as the REST route runs it: the document checked outside the unit of work
    (`prepare_import`), then the command run by the runner.

    :raises ValidationFailed: the document breaks a rule; nothing is imported.
    """
    prepared = await prepare_import(reader, user_id, document)
    return await run(uow, import_account, clock, user_id, prepared)


async def stored_task(uow_factory: UnitOfWorkFactory, user_id: str, task_id: uuid.UUID) -> Task:
    """The task as committed, read through a unit of work.

    :raises NotFound: the user has no such task.
    """
    async with uow_factory() as uow:
        task = await uow.tasks.get(user_id, task_id)
    if task is None:
        raise NotFound("task")
    return task


@pytest.fixture
def uow_factory(backend: Backend) -> UnitOfWorkFactory:
    """Makes units of work on the test's backend."""
    return backend.uow_factory


@pytest.fixture
def task_views(backend: Backend) -> TaskViews:
    """The read side of the test's backend."""
    return backend.views


@pytest.fixture
def new_user() -> Callable[[], str]:
    """Makes a user id no other test uses, so tests share databases without seeing each other."""
    return lambda: f"user-{uuid.uuid4().hex[:16]}"


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings of a test app; no rate limits unless the test sets them (tests make requests as fast
    as the app answers, tests/api/test_limits.py tests the limits)."""
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        cursor_secret="test-cursor-secret",
        dev_mode=False,
        _env_file=None,  # type: ignore[call-arg]
        **{"rate_limits": "none", **overrides},
    )


@dataclasses.dataclass(frozen=True)
class SqlStore:
    """A migrated database of the session and what the app's container would make for it,
    made once and shared by every app of the session (and so their connection pools)."""

    url: str
    engine: AsyncEngine
    views: TaskViews
    pool: PostgresPool | None


@pytest.fixture(scope="session")
def sqlite_store(sqlite_url: str, sqlite_engine: AsyncEngine, sqlite_views: TaskViews) -> SqlStore:
    return SqlStore(sqlite_url, sqlite_engine, sqlite_views, None)


@pytest.fixture(scope="session")
def postgres_store(
    postgres_url: str, postgres_engine: AsyncEngine, postgres_views: TaskViews, postgres_pool: PostgresPool
) -> SqlStore:
    return SqlStore(postgres_url, postgres_engine, postgres_views, postgres_pool)


def build_app(store: SqlStore, **overrides: Any) -> tuple[FastAPI, Container]:
    """The real app on a migrated database, sharing the session's engine, pool and views,
    settings overridden."""
    container = Container(settings=settings_for(store.url, **overrides))
    container.engine.override(providers.Object(store.engine))
    if store.pool is not None:
        container.postgres_pool.override(providers.Object(store.pool))
    container.task_views.override(providers.Object(store.views))
    return create_app(container=container), container


@asynccontextmanager
async def api_client(store: SqlStore, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `build_app(...)`; a JWKS client the app opened is closed after."""
    app, container = build_app(store, **overrides)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            yield http
    finally:
        key_source = container.key_source()
        if isinstance(key_source, JwksKeys):
            await key_source.aclose()


@pytest.fixture(params=SQL_BACKENDS, scope="module")
def app(request: pytest.FixtureRequest) -> FastAPI:
    """The real app on one SQL backend, shared by the tests of a module (each test has users of
    its own): FastAPI prepares an app's routes at its first requests, ~0.15 s of an API test's
    ~0.3 s. A test that changes the app, or counts what it did, makes an app of its own."""
    application, _ = build_app(request.getfixturevalue(f"{request.param}_store"))
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def bearer(user_id: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(TEST_SECRET, user_id, **claims)}"}


class Caller:
    """A signed-in user of the API: their id, and requests made with their token."""

    def __init__(self, client: httpx.AsyncClient, user_id: str) -> None:
        self.client = client
        self.id = user_id
        self.headers = bearer(user_id)

    def url(self, path: str = "") -> str:
        return f"/api/{self.id}{path}"

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, self.url(path), headers=headers, **kwargs)

    async def create_task(self, **fields: Any) -> dict[str, Any]:
        response = await self.request("POST", "/tasks", json={"title": "A task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def caller(client: httpx.AsyncClient, new_user: Callable[[], str]) -> Callable[[], Caller]:
    """Makes signed-in users of the API."""
    return lambda: Caller(client, new_user())


@pytest.fixture
def alice(caller: Callable[[], Caller]) -> Caller:
    return caller()


@pytest.fixture
def bob(caller: Callable[[], Caller]) -> Caller:
    return caller()
