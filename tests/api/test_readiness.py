"""Readiness that tells the truth, over HTTP against the real app: a database nobody migrated, a
key server that does not answer, and a pool not yet opened are each said as what they are."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric import ed25519
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import SqlStore, api_client, bearer, libpq_url, settings_for
from tests.jwt_tools import JwksServer, SigningKey
from tests.migrations.test_schema import alembic_config
from tests.scrape import samples, value
from todo_adapters.sqlalchemy.engine import create_engine
from todo_adapters.sqlalchemy.schema_revision import SqliteSchemaRevision
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.container import Container
from todo_api.schema_gate import RECHECK_SECONDS, SchemaGate, code_revisions

PROBLEM_JSON = "application/problem+json"
RUN_MIGRATE = "The database has no schema yet: the operator must run `todo migrate`."
BEHIND = "The database's schema is older than this version of the service needs: the operator must run `todo migrate`."


@asynccontextmanager
async def app_on(database_url: str, container: Container | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The real app as `todo serve` wires it for `database_url` (or from `container`): its own
    engine or pool, opened on first use, closed after."""
    app = create_app(container=container or Container(settings=settings_for(database_url)))
    transport = httpx.ASGITransport(app=app)
    failed: BaseException | None = None
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        try:
            yield http
        except Exception as failure:  # raised after the lifespan ends, which it would skip
            failed = failure
    if failed is not None:
        raise failed


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}"


@pytest.fixture
def empty_postgres(postgres_server_url: str) -> Iterator[str]:
    """A database of its own on the test server, with no table in it."""
    name = f"todo_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(postgres_server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield (
                make_url(postgres_server_url)
                .set(drivername="postgresql+psycopg", database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def never_migrated(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"empty_{request.param}"))


async def test_a_database_never_migrated_is_not_ready_and_says_run_todo_migrate(
    never_migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_on(never_migrated) as client:
        await asyncio.sleep(0.2)  # the startup's own work (SQLite: the sweep of interrupted imports) is done
        ready = await client.get("/readyz")
        user = "user-" + uuid.uuid4().hex[:8]
        answers = [
            await client.get(f"/api/{user}/tasks", headers=bearer(user)),
            await client.post(f"/api/{user}/tasks", json={"title": "First"}, headers=bearer(user)),
            await client.get(f"/api/{user}/categories", headers=bearer(user)),
            await client.get(f"/api/{user}/changes", headers=bearer(user)),
        ]

    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "detail": RUN_MIGRATE}
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["type"] == "/problems/not-migrated"
        assert answer.json()["detail"] == RUN_MIGRATE
        assert int(answer.headers["retry-after"]) > 0
    # Said once, as what it is: no traceback in the log.
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


# --- A schema older (or newer) than the code's ---------------------------------------------


@pytest.fixture
def one_revision_behind(never_migrated: str) -> str:
    """A database migrated to the revision before the code's newest, as after a deploy of new
    code that nobody migrated for."""
    migrate(never_migrated)
    command.downgrade(alembic_config(never_migrated), "-1")
    return never_migrated


async def set_revision(database_url: str, revision: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})
    finally:
        await engine.dispose()


async def test_a_database_one_revision_behind_is_not_ready_until_migrated_and_then_is_without_a_restart(
    one_revision_behind: str,
) -> None:
    user = "user-" + uuid.uuid4().hex[:8]
    async with app_on(one_revision_behind) as client:
        ready = await client.get("/readyz")
        answers = [
            await client.get(f"/api/{user}/tasks", headers=bearer(user)),
            await client.post(f"/api/{user}/tasks", json={"title": "First"}, headers=bearer(user)),
            await client.get(f"/api/{user}/changes", headers=bearer(user)),
        ]
        assert ready.status_code == 503, ready.text
        assert ready.json() == {"status": "unavailable", "detail": BEHIND}
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == PROBLEM_JSON
            assert answer.json()["type"] == "/problems/not-migrated"
            assert answer.json()["detail"] == BEHIND
            assert int(answer.headers["retry-after"]) > 0

        await asyncio.to_thread(migrate, one_revision_behind)  # beside the live server

        # Requests alone find out, within a few seconds; /readyz at once.
        migrated = time.monotonic()
        while (
            created := await client.post(f"/api/{user}/tasks", json={"title": "First"}, headers=bearer(user))
        ).status_code == 503 and time.monotonic() - migrated < RECHECK_SECONDS + 3:
            await asyncio.sleep(0.1)
        assert created.status_code == 201, created.text
        assert time.monotonic() - migrated <= RECHECK_SECONDS + 1
        assert (await client.get("/readyz")).status_code == 200


async def test_readiness_sees_a_migration_at_once(one_revision_behind: str) -> None:
    async with app_on(one_revision_behind) as client:
        assert (await client.get("/readyz")).status_code == 503
        await asyncio.to_thread(migrate, one_revision_behind)
        ready = await client.get("/readyz")

    assert ready.status_code == 200, ready.text


async def test_a_schema_newer_than_the_code_is_served_and_logged_as_such(
    never_migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(migrate, never_migrated)
    await set_revision(never_migrated, "9999")  # as a newer version of the service leaves it
    user = "user-" + uuid.uuid4().hex[:8]
    with caplog.at_level("WARNING", logger="todo_api.schema_gate"):
        async with app_on(never_migrated) as client:
            ready = await client.get("/readyz")
            created = await client.post(f"/api/{user}/tasks", json={"title": "First"}, headers=bearer(user))

    assert ready.status_code == 200, ready.text
    assert created.status_code == 201, created.text
    warnings = [record.getMessage() for record in caplog.records if record.name == "todo_api.schema_gate"]
    assert len(warnings) == 1, warnings  # once, not at every check
    assert "9999" in warnings[0] and code_revisions()[-1] in warnings[0]


class CountedRevision:
    """A schema revision reader that counts its reads."""

    def __init__(self, url: str) -> None:
        self.reader = SqliteSchemaRevision(create_engine(url))
        self.reads = 0

    async def current(self) -> str | None:
        self.reads += 1
        return await self.reader.current()


async def test_a_ready_server_does_not_read_the_schema_revision_per_request(sqlite_url: str) -> None:
    counted = CountedRevision(sqlite_url)
    container = Container(settings=settings_for(sqlite_url))
    container.schema_gate.override(providers.Object(SchemaGate(counted)))
    user = "user-" + uuid.uuid4().hex[:8]
    async with app_on(sqlite_url, container) as client:
        for _ in range(20):
            assert (await client.get(f"/api/{user}/tasks", headers=bearer(user))).status_code == 200
        reads_for_requests = counted.reads
        assert (await client.get("/readyz")).status_code == 200

    assert reads_for_requests == 1  # at start, or at the first request, whichever came first
    assert counted.reads == 2  # and at /readyz


async def test_the_problem_type_not_migrated_is_explained(client: httpx.AsyncClient) -> None:
    for name in ("not-migrated", "auth-unavailable"):
        page = await client.get(f"/problems/{name}")
        assert page.status_code == 200, page.text


# --- A key server that does not answer -------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def key_server(signing_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(signing_key)
    server.start()
    yield server
    server.stop()


def token_for(key: SigningKey, user: str) -> dict[str, str]:
    now = int(time.time())
    return {"Authorization": f"Bearer {key.sign({'sub': user, 'iat': now, 'exp': now + 900})}"}


async def test_a_key_server_that_is_down_makes_requests_503_never_401_until_it_is_back(
    sqlite_store: SqlStore, key_server: JwksServer, signing_key: SigningKey
) -> None:
    user = "user-" + uuid.uuid4().hex[:8]
    key_server.status = 503
    async with api_client(sqlite_store, jwks_url=key_server.url) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "TODO_JWKS_URL" in ready.json()["detail"]

        # Down for a while: every request is a 503 that names the cause, and the server is
        # asked again and again, but not at every request.
        started = time.monotonic()
        while time.monotonic() - started < 6:
            answer = await client.get(f"/api/{user}/tasks", headers=token_for(signing_key, user))
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == PROBLEM_JSON
            assert answer.json()["type"] == "/problems/auth-unavailable"
            assert 1 <= int(answer.headers["retry-after"]) <= 3
            assert "www-authenticate" not in answer.headers
            await asyncio.sleep(0.05)
        assert 4 <= key_server.requests <= 8, key_server.requests  # 0.5, 1, 2, 3, 3… s apart

        key_server.status = 200
        back = time.monotonic()
        while (
            answer := await client.get(f"/api/{user}/tasks", headers=token_for(signing_key, user))
        ).status_code == 503:
            await asyncio.sleep(0.05)
        waited = time.monotonic() - back

        assert answer.status_code == 200, answer.text
        assert waited < 3.5, f"the first request succeeded {waited:.1f} s after the key server was back"
        assert (await client.get("/readyz")).status_code == 200


async def test_readiness_fetches_the_keys_when_none_are_cached(sqlite_store: SqlStore, key_server: JwksServer) -> None:
    async with api_client(sqlite_store, jwks_url=key_server.url) as client:
        ready = await client.get("/readyz")

    assert ready.status_code == 200, ready.text
    assert key_server.requests == 1


# --- The pool's gauges before the pool is opened ---------------------------------------------


async def test_an_unopened_postgres_pool_has_no_connection_in_use(postgres_store: SqlStore) -> None:
    container = Container(settings=settings_for(postgres_store.url, db_pool_size=7))
    app = create_app(container=container)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            before = samples((await client.get("/metrics")).text)
            user = "user-" + uuid.uuid4().hex[:8]
            assert (await client.get(f"/api/{user}/tasks", headers=bearer(user))).status_code == 200
            after = samples((await client.get("/metrics")).text)
    finally:
        await container.postgres_pool().close()

    assert value(before, "todo_db_pool_connections_in_use") == 0
    assert value(before, "todo_db_pool_requests_waiting") == 0
    assert value(after, "todo_db_pool_connections_in_use") == 0  # opened, and every connection back
