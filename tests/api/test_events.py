"""GET /api/{user_id}/events over HTTP against the real app, in-process: what is announced, to
whom, how the stream keeps alive, and when it ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from dependency_injector import providers
from sqlalchemy.engine import make_url

from tests.conftest import Caller, SqlStore, bearer, build_app, settings_for
from tests.event_streams import EventStream, StreamingASGITransport, changed_token, latest_token, open_events
from tests.sent_statements import SentStatements
from todo_adapters.broker import ChangeBroker
from todo_adapters.sqlalchemy.change_listener import PostgresChangeListener
from todo_api.app import create_app
from todo_api.container import Container

#: How long a stream must stay quiet to show it announces nothing.
QUIET_SECONDS = 0.5


@dataclass
class EventsApi:
    """One app, called two ways: `api` for ordinary requests, `streams` for event streams."""

    api: httpx.AsyncClient
    streams: httpx.AsyncClient
    container: Container

    def caller(self, user_id: str) -> Caller:
        return Caller(self.api, user_id)

    def events(self, user: Caller, headers: dict[str, str] | None = None) -> AbstractAsyncContextManager[EventStream]:
        return open_events(self.streams, user.url("/events"), headers if headers is not None else user.headers)

    @property
    def broker(self) -> ChangeBroker:
        broker: ChangeBroker = self.container.broker()
        return broker


@pytest.fixture
def events_api_factory(sqlite_store: SqlStore) -> Callable[..., AbstractAsyncContextManager[EventsApi]]:
    """Makes an `EventsApi` on SQLite with settings overridden."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[EventsApi]:
        app, container = build_app(sqlite_store, **overrides)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api,
            httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as streams,
        ):
            yield EventsApi(api, streams, container)

    return make


@pytest.fixture
async def events_api(events_api_factory: Callable[..., Any]) -> AsyncIterator[EventsApi]:
    async with events_api_factory() as made:
        yield made


async def test_a_change_is_announced_with_the_token_a_sync_would_return(
    events_api: EventsApi, new_user: Callable[[], str]
) -> None:
    alice = events_api.caller(new_user())
    async with events_api.events(alice) as stream:
        assert stream.response.status_code == 200
        task = await alice.create_task(title="Water the plants")
        assert await changed_token(stream) == await latest_token(alice)
        renamed = await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Water the ferns"})
        assert renamed.status_code == 200
        assert await changed_token(stream) == await latest_token(alice)
        category = await alice.request("POST", "/categories", json={"name": "Home"})
        assert category.status_code == 201
        assert await changed_token(stream) == await latest_token(alice)
        deleted = await alice.request("DELETE", f"/tasks/{task['id']}")
        assert deleted.status_code == 204
        assert await changed_token(stream) == await latest_token(alice)


async def test_another_users_change_is_not_announced(events_api: EventsApi, new_user: Callable[[], str]) -> None:
    alice, bob = events_api.caller(new_user()), events_api.caller(new_user())
    async with events_api.events(alice) as stream:
        await bob.create_task(title="Bob's")
        with pytest.raises(TimeoutError):
            await stream.next_event(QUIET_SECONDS)
        await alice.create_task(title="Alice's")
        assert await changed_token(stream) == await latest_token(alice)


async def test_every_open_stream_of_the_user_is_told(events_api: EventsApi, new_user: Callable[[], str]) -> None:
    alice = events_api.caller(new_user())
    async with events_api.events(alice) as phone, events_api.events(alice) as laptop:
        await alice.create_task()
        expected = await latest_token(alice)
        assert [await changed_token(phone), await changed_token(laptop)] == [expected, expected]


async def test_the_stream_is_an_uncached_unbuffered_event_stream(
    events_api: EventsApi, new_user: Callable[[], str]
) -> None:
    alice = events_api.caller(new_user())
    async with events_api.events(alice) as stream:
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"


async def test_an_idle_stream_sends_heartbeats(
    events_api_factory: Callable[..., Any], new_user: Callable[[], str]
) -> None:
    async with events_api_factory(events_heartbeat_seconds=0.2) as events_api:
        alice = events_api.caller(new_user())
        async with events_api.events(alice) as stream:
            started = time.monotonic()
            beats = [await stream.next(1.0) for _ in range(3)]
            elapsed = time.monotonic() - started
    assert all(beat is not None and beat.comment is not None and beat.name is None for beat in beats), beats
    assert 0.4 <= elapsed < 1.5


@pytest.mark.parametrize("leeway", [0, 1])
async def test_the_stream_ends_when_the_token_is_no_longer_accepted(
    events_api_factory: Callable[..., Any], new_user: Callable[[], str], leeway: int
) -> None:
    async with events_api_factory(jwt_leeway_seconds=leeway) as events_api:
        alice = events_api.caller(new_user())
        issued = int(time.time())
        headers = bearer(alice.id, ttl_seconds=2, now=issued)
        async with events_api.events(alice, headers) as stream:
            assert stream.response.status_code == 200
            assert await stream.next_event(2 + leeway + 2.0) is None, "the stream did not end"
            ended = time.time()
            assert events_api.broker.subscriptions == 0
    assert issued + 2 + leeway - 0.05 <= ended <= issued + 2 + leeway + 1.0


async def test_a_stream_that_the_client_leaves_lets_go_of_its_subscription(
    events_api: EventsApi, new_user: Callable[[], str]
) -> None:
    alice = events_api.caller(new_user())
    async with events_api.events(alice):
        assert events_api.broker.subscriptions == 1
    assert events_api.broker.subscriptions == 0


async def test_events_need_the_users_own_token(events_api: EventsApi, new_user: Callable[[], str]) -> None:
    alice, bob = events_api.caller(new_user()), events_api.caller(new_user())
    async with events_api.events(alice, headers={}) as anonymous:
        assert anonymous.response.status_code == 401
        assert anonymous.response.headers["content-type"] == "application/problem+json"
    async with events_api.events(alice, headers=bob.headers) as other:
        assert other.response.status_code == 403
    assert events_api.broker.subscriptions == 0


async def test_the_openapi_document_describes_the_event_stream(events_api: EventsApi) -> None:
    document = (await events_api.api.get("/openapi.json")).json()
    operation = document["paths"]["/api/{user_id}/events"]["get"]
    assert operation["tags"] == ["sync"]
    assert operation["security"] == [{"HTTPBearer": []}]
    ok = operation["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}
    assert "event: changed" in ok["description"] and "next_since" in ok["description"]
    for status in ("401", "403"):
        assert set(operation["responses"][status]["content"]) == {"application/problem+json"}, status


# PostgreSQL: a change is announced by NOTIFY, sent after the commit, and heard by the process's
# change listener (started by the app's lifespan).

#: How often the listener of these tests catches up on what it did not hear.
CATCH_UP_SECONDS = 0.2


@pytest.fixture
async def postgres_events_api(postgres_url: str) -> AsyncIterator[EventsApi]:
    """An `EventsApi` on PostgreSQL, its lifespan running (so its change listener listens), with
    a pool of its own (the lifespan closes it)."""
    # No webhook delivery loop: its claims (BEGIN … COMMIT each poll, on a connection of its
    # own) would interleave with the statements of the commands these tests follow.
    container = Container(settings=settings_for(postgres_url, webhooks_in_server=False))
    container.change_listener.override(
        providers.Singleton(
            PostgresChangeListener, make_url(postgres_url), container.broker, catch_up_seconds=CATCH_UP_SECONDS
        )
    )
    app = create_app(container=container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api,
        httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as streams,
    ):
        await container.change_listener().listening(5.0)
        yield EventsApi(api, streams, container)


def _failing_notify(execute: Callable[..., Any]) -> Callable[..., Any]:
    """`AsyncCursor.execute`, but a statement that notifies fails in the server instead (a
    division by zero), as a NOTIFY sent after the commit may fail."""

    def wrapper(cursor: psycopg.AsyncCursor[Any], query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, str) and "pg_notify" in query:
            query, params = "SELECT 1 / 0", None
        return execute(cursor, query, params, *args, **kwargs)

    return wrapper


@pytest.mark.postgres
async def test_a_change_whose_notification_failed_still_reaches_the_stream(
    postgres_events_api: EventsApi, new_user: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = postgres_events_api.caller(new_user())
    async with postgres_events_api.events(alice) as stream:
        await alice.create_task(title="Heard")
        assert await changed_token(stream) == await latest_token(alice)
        with monkeypatch.context() as failing:
            failing.setattr(psycopg.AsyncCursor, "execute", _failing_notify(psycopg.AsyncCursor.execute))
            created = await alice.request("POST", "/tasks", json={"title": "Not notified"})
        assert created.status_code == 201, created.text  # stored: only its announcement failed
        # Announced all the same, once the listener catches up; and only once.
        assert await changed_token(stream) == await latest_token(alice)
        with pytest.raises(TimeoutError):
            await stream.next_event(3 * CATCH_UP_SECONDS)


@pytest.mark.postgres
async def test_the_notification_is_sent_after_the_commit_not_inside_the_transaction(
    postgres_events_api: EventsApi, new_user: Callable[[], str], sent_statements: SentStatements
) -> None:
    alice = postgres_events_api.caller(new_user())
    with sent_statements.capturing() as sent:
        await alice.create_task(title="Announced after commit")
    # The listener's catch-up may run meanwhile on its own connection: only this order matters.
    order = [
        word
        for sql in sent
        for word in ("BEGIN", "COMMIT", "pg_notify")
        if sql.strip() == word or (word == "pg_notify" and word in sql)
    ]
    # Every notification (the change's, and the delivery loops' wake-up when the outbox was
    # written) after the COMMIT.
    assert order[:2] == ["BEGIN", "COMMIT"] and order[2:] and set(order[2:]) == {"pg_notify"}, sent
