"""Per-user fairness: rate limits (429 with the IETF RateLimit fields), in one process or shared in
Redis; a user's own writes piling up answered 429, not 503; caps on event streams and calendar
feeds."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import http_sf
import httpx
import psycopg
import pytest

from tests.conftest import Caller, SqlStore, api_client, build_app, libpq_url
from tests.event_streams import StreamingASGITransport, open_events
from todo_adapters.sqlalchemy.psycopg import PostgresPool, PostgresUnitOfWork
from todo_core import ordering
from todo_core.task import Task, TaskFields

REDIS_URL = "redis://127.0.0.1:6379/0"
#: A port nothing listens on: a Redis that is down.
DOWN_REDIS_URL = "redis://127.0.0.1:1/0"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


@pytest.fixture
def redis_prefix() -> str:
    """Keys of this test alone: counters left by another run (or test) cannot count here."""
    return f"todo-test-{uuid.uuid4().hex}"


def user(client: httpx.AsyncClient) -> Caller:
    return Caller(client, f"user-{uuid.uuid4().hex[:16]}")


def rate_limit_fields(response: httpx.Response) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """`RateLimit-Policy` and `RateLimit`, parsed as RFC 9651 lists: policy name → parameters."""

    def parsed(name: str) -> dict[str, dict[str, Any]]:
        items = http_sf.parse(response.headers[name].encode(), tltype="list")
        return {value: dict(parameters) for value, parameters in items}

    return parsed("RateLimit-Policy"), parsed("RateLimit")


async def test_requests_beyond_the_limit_get_429_with_retry_after_and_ratelimit_fields(store: SqlStore) -> None:
    async with api_client(store, rate_limits="4/minute;100/hour") as client:
        alice = user(client)
        for remaining in (3, 2, 1, 0):
            response = await alice.request("GET", "/tasks")
            assert response.status_code == 200
            policy, state = rate_limit_fields(response)
            assert policy == {"4/minute": {"q": 4, "w": 60}, "100/hour": {"q": 100, "w": 3600}}
            assert state["4/minute"]["r"] == remaining
            assert 0 < state["4/minute"]["t"] <= 60
        refused = await alice.request("POST", "/tasks", json={"title": "one too many"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        _, state = rate_limit_fields(refused)
        assert state["4/minute"]["r"] == 0
    async with api_client(store) as unlimited:
        tasks = await Caller(unlimited, alice.id).request("GET", "/tasks")
        assert tasks.json() == [], "the refused create was not applied"


async def test_another_user_is_not_limited_by_the_first_users_exhaustion(store: SqlStore) -> None:
    async with api_client(store, rate_limits="3/minute") as client:
        alice, bob = user(client), user(client)
        for _ in range(4):
            await alice.request("GET", "/tasks")
        assert (await alice.request("GET", "/tasks")).status_code == 429
        response = await bob.request("GET", "/tasks")
        assert response.status_code == 200
        assert rate_limit_fields(response)[1]["3/minute"]["r"] == 2


async def test_requests_without_a_valid_token_take_nobodys_budget(store: SqlStore) -> None:
    async with api_client(store, rate_limits="2/minute") as client:
        alice = user(client)
        for _ in range(5):
            assert (await client.get(alice.url("/tasks"))).status_code == 401
        assert (await alice.request("GET", "/tasks")).status_code == 200


async def test_limits_none_sends_no_ratelimit_fields(store: SqlStore) -> None:
    async with api_client(store, rate_limits="none") as client:
        response = await user(client).request("GET", "/tasks")
        assert response.status_code == 200
        assert "RateLimit" not in response.headers


async def test_a_refusal_is_logged_once_per_window_with_the_user_hashed(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(store, rate_limits="1/minute") as client:
        alice = user(client)
        with caplog.at_level(logging.WARNING, logger="todo_api.rate_limits"):
            for _ in range(4):
                await alice.request("GET", "/tasks")
    refusals = [record.getMessage() for record in caplog.records if "rate limit" in record.getMessage()]
    assert len(refusals) == 1, refusals
    assert "1/minute" in refusals[0]
    assert alice.id not in refusals[0]


async def test_redis_shares_a_users_limit_between_two_app_instances(store: SqlStore, redis_prefix: str) -> None:
    shared = {"rate_limits": "4/minute", "redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    async with api_client(store, **shared) as first, api_client(store, **shared) as second:
        user_id = f"user-{uuid.uuid4().hex[:16]}"
        on_first, on_second = Caller(first, user_id), Caller(second, user_id)
        for caller in (on_first, on_second, on_first, on_second):
            assert (await caller.request("GET", "/tasks")).status_code == 200
        assert (await on_second.request("GET", "/tasks")).status_code == 429
        assert (await on_first.request("GET", "/tasks")).status_code == 429
        assert (await Caller(first, f"user-{uuid.uuid4().hex[:16]}").request("GET", "/tasks")).status_code == 200


async def test_without_redis_each_app_instance_counts_its_own(store: SqlStore) -> None:
    async with api_client(store, rate_limits="2/minute") as first, api_client(store, rate_limits="2/minute") as second:
        user_id = f"user-{uuid.uuid4().hex[:16]}"
        for client in (first, first, second, second):
            assert (await Caller(client, user_id).request("GET", "/tasks")).status_code == 200


async def test_redis_down_lets_requests_through_and_says_so_in_the_log(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(store, rate_limits="1/minute", redis_url=DOWN_REDIS_URL) as client:
        alice = user(client)
        with caplog.at_level(logging.WARNING, logger="todo_api.rate_limits"):
            statuses = [(await alice.request("GET", "/tasks")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert any("Redis cannot be reached" in record.getMessage() for record in caplog.records)


async def test_a_calendar_feed_is_limited_per_feed_url_not_per_owner(store: SqlStore) -> None:
    async with api_client(store, rate_limits="3/minute") as client:
        alice = user(client)
        created = await alice.request("POST", "/calendar-feeds")
        assert created.status_code == 201
        feed_path = httpx.URL(created.json()["url"]).path
        for _ in range(3):
            assert (await client.get(feed_path)).status_code == 200
        refused = await client.get(feed_path)
        assert refused.status_code == 429
        assert refused.json()["type"] == "/problems/rate-limited"
        # A guess of another link of hers takes neither that feed's budget nor hers.
        assert (await client.get(feed_path.replace(".ics", "x.ics"))).status_code == 404
        assert (await alice.request("GET", "/tasks")).status_code == 200


async def test_health_probes_are_never_limited(store: SqlStore) -> None:
    async with api_client(store, rate_limits="1/minute") as client:
        assert [(await client.get("/healthz")).status_code for _ in range(3)] == [200, 200, 200]


async def test_a_user_has_at_most_max_calendar_feeds(store: SqlStore) -> None:
    async with api_client(store, max_calendar_feeds=2) as client:
        alice, bob = user(client), user(client)
        made = [await alice.request("POST", "/calendar-feeds") for _ in range(2)]
        assert [response.status_code for response in made] == [201, 201]
        refused = await alice.request("POST", "/calendar-feeds")
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/too-many-calendar-feeds"
        assert "at most 2" in refused.json()["detail"]
        assert len((await alice.request("GET", "/calendar-feeds")).json()) == 2
        assert (await bob.request("POST", "/calendar-feeds")).status_code == 201
        revoked = await alice.request("DELETE", f"/calendar-feeds/{made[0].json()['id']}")
        assert revoked.status_code == 204
        assert (await alice.request("POST", "/calendar-feeds")).status_code == 201


@asynccontextmanager
async def streaming_client(store: SqlStore, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = build_app(store, **overrides)
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as client:
        yield client


async def test_a_user_has_at_most_max_event_streams_open(sqlite_store: SqlStore) -> None:
    async with streaming_client(sqlite_store, max_event_streams=2) as client:
        alice, bob = user(client), user(client)
        async with (
            open_events(client, alice.url("/events"), alice.headers),
            open_events(client, alice.url("/events"), alice.headers),
        ):
            async with client.stream("GET", alice.url("/events"), headers=alice.headers) as refused:
                assert refused.status_code == 429  # a stream that opened would fail here, not hang
                await refused.aread()
            assert refused.json()["type"] == "/problems/too-many-event-streams"
            assert refused.headers["Retry-After"] == "1"
            async with open_events(client, bob.url("/events"), bob.headers) as bobs:
                assert bobs is not None  # another user's stream opens
        # Closed streams give their places back.
        async with open_events(client, alice.url("/events"), alice.headers):
            pass


@asynccontextmanager
async def holding_change_number(postgres_url: str, user_id: str) -> AsyncIterator[None]:
    """Another transaction of the user's, holding the user's change number (as a long batch of
    theirs would) for the block."""
    async with await psycopg.AsyncConnection.connect(libpq_url(postgres_url)) as connection:
        await connection.execute(
            "INSERT INTO user_changes (user_id, seq, horizon) VALUES (%(user_id)s, 1, 0) "
            "ON CONFLICT (user_id) DO UPDATE SET seq = user_changes.seq + 1",
            {"user_id": user_id},
        )
        yield
        await connection.rollback()


async def test_a_users_own_writes_piling_up_get_429_user_busy_not_503(
    postgres_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(postgres_store) as client:
        alice, bob = user(client), user(client)
        await alice.create_task(title="before")
        async with holding_change_number(postgres_store.url, alice.id):
            with caplog.at_level(logging.WARNING, logger="todo_api.limits"):
                started = asyncio.get_running_loop().time()
                refused, bobs = await asyncio.gather(
                    alice.request("POST", "/tasks", json={"title": "queued"}),
                    bob.request("POST", "/tasks", json={"title": "someone else"}),
                )
                waited = asyncio.get_running_loop().time() - started
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"] == "/problems/user-busy"
        assert refused.headers["Retry-After"] == "1"
        assert waited < 3, "refused after the lock wait, long before the statement timeout"
        assert bobs.status_code == 201, "another user's write does not wait for hers"
        logged = [record.getMessage() for record in caplog.records]
        assert any("than the database can take one after the other" in line for line in logged), logged
        titles = [task["title"] for task in (await alice.request("GET", "/tasks")).json()]
        assert titles == ["before"], "nothing of the refused write was applied"


async def test_eight_clients_batching_for_one_user_get_429_or_200_never_503(postgres_store: SqlStore) -> None:
    async with api_client(postgres_store) as client:
        alice = user(client)
        operations = [{"op": "create", "body": {"title": f"task {n}"}} for n in range(100)]
        async with holding_change_number(postgres_store.url, alice.id):
            answers = await asyncio.gather(
                *(alice.request("POST", "/batch", json={"operations": operations}) for _ in range(8))
            )
        assert {response.status_code for response in answers} == {429}
        assert all(response.json()["type"] == "/problems/user-busy" for response in answers)


async def writing_in_turn(
    pool: PostgresPool, user_id: str, position: str, has_turn: asyncio.Event, done: asyncio.Event
) -> None:
    """A write of the user's, through the adapter's own unit of work, that keeps its turn (the
    user's change number) until `done`, as a long batch of theirs would."""
    async with PostgresUnitOfWork(pool) as uow:
        task = Task.new(user_id, TaskFields("held", time_zone="UTC"), datetime.now(UTC), position)
        await uow.tasks.add(task)
        await uow.tasks.get(user_id, task.id)  # read back: the turn is ours
        has_turn.set()
        await done.wait()
        await uow.commit()


@pytest.mark.alone
async def test_a_write_behind_a_line_of_the_users_writes_is_refused_after_one_wait_not_one_per_writer(
    postgres_store: SqlStore,
) -> None:
    """The user's writers take their turns in the order they came, and the bound (1 s) is on a
    write's whole wait: not restarted each time the one ahead of it hands over, which let a
    write behind a line of batches wait until the statement timeout (503)."""
    assert postgres_store.pool is not None
    async with api_client(postgres_store) as client:
        alice = user(client)
        await alice.create_task(title="before")
        first_turn, first_done, second_turn, second_done = (asyncio.Event() for _ in range(4))
        pool, first_place = postgres_store.pool, ordering.after(ordering.FIRST)
        first = asyncio.create_task(writing_in_turn(pool, alice.id, first_place, first_turn, first_done))
        await asyncio.wait_for(first_turn.wait(), 5)
        second_place = ordering.after(first_place)
        second = asyncio.create_task(writing_in_turn(pool, alice.id, second_place, second_turn, second_done))
        await asyncio.sleep(0.2)  # the second writer queues
        loop = asyncio.get_running_loop()
        sent = loop.time()
        write = asyncio.create_task(alice.request("POST", "/tasks", json={"title": "third in line"}))
        await asyncio.sleep(0.5)
        first_done.set()  # the second writer's turn, held on: the third now waits for it
        answer = await asyncio.wait_for(write, 10)
        waited = loop.time() - sent
        second_done.set()
        await asyncio.gather(first, second)
    assert second_turn.is_set(), "the writer that came second had its turn second"
    assert answer.status_code == 429, answer.text
    assert answer.json()["type"] == "/problems/user-busy"
    assert waited < 1.4, f"refused after {waited:.2f} s: the bound restarted when the turn passed on"


def test_the_rate_limit_setting_is_checked(sqlite_store: SqlStore) -> None:
    with pytest.raises(ValueError, match="rate_limits"):
        build_app(sqlite_store, rate_limits="lots")


async def test_a_user_has_at_most_max_tasks_whichever_way_they_are_made(store: SqlStore) -> None:
    async with api_client(store, max_tasks=3) as client:
        alice, bob = user(client), user(client)
        first = await alice.create_task(title="one")
        batch = await alice.request("POST", "/batch", json={"operations": [{"op": "create", "body": {"title": "two"}}]})
        assert batch.status_code == 200, batch.text
        await alice.create_task(title="three")

        refused = await alice.request("POST", "/tasks", json={"title": "four"})
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/too-many-tasks"
        assert "at most 3 tasks" in refused.json()["detail"]
        over = await alice.request("POST", "/batch", json={"operations": [{"op": "create", "body": {"title": "four"}}]})
        assert (over.status_code, over.json()["type"]) == (409, "/problems/too-many-tasks")
        document = {"format": "todo-export", "version": 1, "tasks": [{"id": str(uuid.uuid4()), "title": "four"}]}
        imported = await alice.request("POST", "/import", json=document)
        assert (imported.status_code, imported.json()["type"]) == (409, "/problems/too-many-tasks"), imported.text
        assert len((await alice.request("GET", "/tasks")).json()) == 3, "nothing of the refused was applied"

        assert (await bob.request("POST", "/tasks", json={"title": "bob's"})).status_code == 201
        assert (await alice.request("DELETE", f"/tasks/{first['id']}")).status_code == 204
        assert (await alice.request("POST", "/tasks", json={"title": "four"})).status_code == 201
