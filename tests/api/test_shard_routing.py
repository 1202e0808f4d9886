"""The check that every statement the service sends goes to one shard of a database distributed
by `user_id` (`tests/shard_routing.py`, run over the whole API suite by `tests/sent_statements.py`)
can fail, and sees what the service really sends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from dependency_injector import providers

from tests.conftest import Caller, SqlStore, api_client, libpq_url, settings_for
from tests.domain.conftest import FixedClock
from tests.event_streams import StreamingASGITransport, changed_token, latest_token, open_events
from tests.migrations.test_schema import fresh_postgres_database
from tests.sent_statements import SentStatements
from tests.shard_routing import CROSS_USER_STATEMENTS, unrouted
from todo_adapters.sqlalchemy import repositories
from todo_adapters.sqlalchemy.execution import compiled_for_postgresql
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.container import Container

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        ("SELECT * FROM tasks WHERE id = %(id)s", {"id": 1}),
        ("SELECT * FROM tasks WHERE tasks.user_id = %(user_id)s OR tasks.id = %(id)s", {"user_id": "a", "id": 1}),
        ("UPDATE tasks SET title = %(title)s WHERE tasks.id = %(id)s", {"title": "x", "id": 1}),
        ("DELETE FROM task_tags WHERE task_tags.user_id IN (%(a)s, %(b)s)", {"a": "a", "b": "b"}),
        ("INSERT INTO categories (id, name) VALUES (%(id)s, %(name)s)", {"id": 1, "name": "x"}),
        (
            "INSERT INTO task_tags (user_id, tag_key) VALUES (%(user_id_0)s, %(k0)s), (%(user_id_1)s, %(k1)s)",
            {"user_id_0": "alice", "user_id_1": "bob", "k0": "a", "k1": "b"},
        ),
        ("SELECT t.id FROM tasks t JOIN task_tags g ON g.task_id = t.id WHERE g.user_id = t.user_id", {}),
        ("SELECT * FROM tasks WHERE tasks.user_id = %s", ["alice"]),
        ("COPY tasks (user_id, id) FROM STDIN", None),
    ],
    ids=[
        "no user",
        "or",
        "update",
        "two users in",
        "insert without user",
        "insert of two users",
        "join",
        "positional",
        "copy",
    ],
)
def test_the_check_names_a_statement_that_does_not_go_to_one_shard(sql: str, parameters: Any) -> None:
    assert unrouted(sql, parameters) is not None


def _sql(statement: Any, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return compiled_for_postgresql(statement, values).sql, values


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        _sql(repositories._TASK, {"user_id": "alice", "task_id": uuid.uuid4()}),
        _sql(repositories._CLEAR_CATEGORY, {"b_user_id": "alice", "b_category_id": uuid.uuid4(), "b_now": None}),
        _sql(repositories._TAG_COUNTS, {"user_id": "alice"}),
        (repositories._NEXT_CHANGE.text.replace(":user_id", "%(user_id)s"), {"user_id": "alice"}),
        (
            "INSERT INTO task_tags (user_id, tag_key) VALUES (%(user_id_0)s, %(k0)s), (%(user_id_1)s, %(k1)s)",
            {"user_id_0": "alice", "user_id_1": "alice", "k0": "a", "k1": "b"},
        ),
        ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", None),
        ("LISTEN todo_changes", None),
    ],
    ids=["get", "clear category", "tag counts", "next change", "insert of one user", "begin", "listen"],
)
def test_the_check_passes_a_statement_of_one_user_or_of_no_table(sql: str, parameters: Any) -> None:
    assert unrouted(sql, parameters) is None


@pytest.mark.parametrize("sql", sorted(CROSS_USER_STATEMENTS))
def test_each_statement_allowed_to_cross_users_does_and_says_why(sql: str) -> None:
    assert unrouted(sql, {}, allowed={}) is not None  # the allowance is needed
    assert len(CROSS_USER_STATEMENTS[sql]) > 40


async def test_what_a_request_sends_to_postgresql_is_checked(
    postgres_store: SqlStore, sent_statements: SentStatements
) -> None:
    async with api_client(postgres_store) as http:
        user = Caller(http, f"user-{uuid.uuid4().hex[:16]}")
        await user.create_task(title="Recorded", tags=["a", "b"])
        assert (await user.request("GET", "/tasks", params={"tag": "a"})).status_code == 200

    seen = {" ".join(sql.split()) for sql in sent_statements.seen}
    assert any(sql.startswith("INSERT INTO tasks ") for sql in seen)
    assert any(sql.startswith("INSERT INTO task_tags ") for sql in seen)
    assert any("row_to_json" in sql and "task_tags.tag_key = ANY" in sql for sql in seen)


#: The session in one process, and in two (pytest-xdist, as `make test` runs it): then each worker
#: sees a share of the tests, and the controller checks what they saw together.
IN_PROCESSES = pytest.mark.parametrize("processes", [[], ["-n", "2"]], ids=["one-process", "xdist"])


@IN_PROCESSES
def test_a_session_that_sends_a_statement_of_no_single_user_fails_and_names_it(
    pytester: pytest.Pytester, postgres_url: str, monkeypatch: pytest.MonkeyPatch, processes: list[str]
) -> None:
    libpq = libpq_url(postgres_url)
    pytester.makeconftest('pytest_plugins = ["tests.sent_statements"]')
    pytester.makepyfile(
        test_inner=f"""
        import asyncio, uuid
        import psycopg
        from tests.sent_statements import STATEMENTS

        def test_sends_two_statements():
            async def send():
                async with await psycopg.AsyncConnection.connect({libpq!r}) as connection:
                    with STATEMENTS.recording("the inner test"):
                        await connection.execute("SELECT * FROM tasks WHERE id = %(id)s", {{"id": uuid.uuid4()}})
                        await connection.execute("SELECT * FROM tasks WHERE user_id = %(user_id)s", {{"user_id": "a"}})
            asyncio.run(send())
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:schemathesis", *processes)

    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "1 statement(s) would not go to one shard" in output
    assert "SELECT * FROM tasks WHERE id = %(id)s" in output
    assert "first sent in: the inner test" in output
    assert "WHERE user_id = %(user_id)s" not in output


@pytest.fixture
def own_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A migrated database of the test's own (its purge sweeps every user's rows)."""
    with fresh_postgres_database(postgres_server_url) as url:
        migrate(url)  # while recording: what Alembic sends is not the service's
        yield url


async def test_on_postgresql_events_the_listener_and_the_purge_work_and_cross_users_only_where_allowed(
    own_postgres_url: str, sent_statements: SentStatements
) -> None:
    container = Container(
        settings=settings_for(own_postgres_url, purge_interval_seconds=0.05, webhooks_poll_seconds=0.05)
    )
    clock = FixedClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    app = create_app(container=container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as streams,
    ):
        listener = await container.change_listener().listening(timeout=5)
        alice = Caller(http, "alice")
        token = await latest_token(alice)
        async with open_events(streams, alice.url("/events"), alice.headers) as stream:
            task = await alice.create_task()
            assert await changed_token(stream) == await latest_token(alice)
            # The listener loses its connection, and a change commits meanwhile: reconnected, it
            # catches up on the open stream's user (the change is announced, heard or not).
            with psycopg.connect(libpq_url(own_postgres_url), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", [listener])
            await alice.create_task(title="While the listener is away")
            caught_up = await stream.next_event(timeout=5)
            assert caught_up is not None and caught_up.name == "changed"
            assert orjson.loads(caught_up.data)["next_since"] == await latest_token(alice)
            # A reminder falls due: the delivery loop claims it, the stream hears of it.
            remind_at = clock.now() + timedelta(hours=1)
            reminded = await alice.create_task(title="Reminded", remind_at=remind_at.isoformat())
            clock.advance(timedelta(hours=2))
            events = [await stream.next_event(timeout=5) for _ in range(2)]
            assert [(e.name, orjson.loads(e.data).get("task_id")) for e in events if e is not None][-1] == (
                "reminder",
                reminded["id"],
            )
        await alice.request("DELETE", f"/tasks/{task['id']}")
        clock.advance(timedelta(days=31))
        for _ in range(100):  # the first purge runs after one interval
            response = await alice.request("GET", "/changes", params={"since": token})
            if response.status_code == 410:
                break
            await asyncio.sleep(0.05)
    assert response.status_code == 410

    seen = {" ".join(sql.split()) for sql in sent_statements.seen}
    assert set(CROSS_USER_STATEMENTS) <= seen  # each was sent, recorded and allowed
    assert "LISTEN todo_changes" in seen


@IN_PROCESSES
def test_a_whole_api_suite_that_never_requests_an_operation_on_postgresql_fails_and_names_it(
    pytester: pytest.Pytester,
    postgres_url: str,
    new_user: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    processes: list[str],
) -> None:
    pytester.makeini("[pytest]\napi_tests = .\n")
    pytester.makeconftest('pytest_plugins = ["tests.sent_statements"]')
    pytester.makepyfile(
        test_inner=f"""
        import asyncio
        import httpx
        from tests.conftest import bearer, settings_for
        from tests.sent_statements import STATEMENTS
        from todo_api.app import create_app
        from todo_api.container import Container

        USER = {new_user()!r}

        def request(method, path, **arguments):
            app = create_app(container=Container(settings=settings_for({postgres_url!r})))

            async def ask():
                transport = httpx.ASGITransport(app=app)
                # In its lifespan: the pool it opens is closed before the loop is.
                async with (
                    app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
                ):
                    with STATEMENTS.recording("an inner test"):
                        return await http.request(method, path, **arguments)
            return asyncio.run(ask())

        def test_asks_for_health_alone():
            assert request("GET", "/healthz").status_code == 200

        def test_creates_a_task():
            created = request("POST", f"/api/{{USER}}/tasks", json={{"title": "A task"}}, headers=bearer(USER))
            assert created.status_code == 201
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:schemathesis", *processes)

    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "operation(s) no API test requested on PostgreSQL" in output
    assert "GET /api/{user_id}/tasks" in output.splitlines()
    # Requested in one test each (under xdist, on one worker each): neither is missing.
    assert "POST /api/{user_id}/tasks" not in output.splitlines()
    assert "GET /healthz" not in output.splitlines()
    # Run one test alone: the rest of the suite did not run, so nothing is missing.
    alone = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:schemathesis", "test_inner.py::test_asks_for_health_alone"
    )
    assert alone.ret == pytest.ExitCode.OK
