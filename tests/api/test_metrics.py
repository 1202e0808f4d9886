"""GET /metrics over HTTP against the real app: requests by route template and status, their
latency, the database pool, open event streams, and who may scrape."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import SQL_BACKENDS, Caller, SqlStore, api_client, build_app
from tests.event_streams import APP_EXIT_SECONDS, StreamingASGITransport, open_events
from tests.scrape import Samples, samples, value


@pytest.fixture(params=SQL_BACKENDS)
def app(request: pytest.FixtureRequest) -> FastAPI:
    """An app of the test's own (not the module's shared one): the test counts what it did."""
    application, _ = build_app(request.getfixturevalue(f"{request.param}_store"))
    return application


REQUESTS = "todo_http_requests_total"
LATENCY = "todo_http_request_duration_seconds"
TASK_ROUTE = "/api/{user_id}/tasks/{task_id}"
#: How long a gauge may take to show a change that has happened (it is read at scrape time).
GAUGE_SECONDS = 5.0
#: The session's PostgreSQL pool (tests/conftest.py: `postgres_pool`).
POOL_SIZE = 5


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_requests_are_counted_by_method_route_template_and_status(alice: Caller) -> None:
    task = await alice.create_task(title="Water the plants")
    assert (await alice.request("GET", f"/tasks/{task['id']}")).status_code == 200
    assert (await alice.request("GET", f"/tasks/{task['id']}")).status_code == 200
    assert (await alice.request("GET", f"/tasks/{uuid.uuid4()}")).status_code == 404
    assert (await alice.request("DELETE", f"/tasks/{task['id']}")).status_code == 204

    scraped = await scrape(alice.client)
    assert value(scraped, REQUESTS, method="POST", route="/api/{user_id}/tasks", status="201") == 1
    assert value(scraped, REQUESTS, method="GET", route=TASK_ROUTE, status="200") == 2
    assert value(scraped, REQUESTS, method="GET", route=TASK_ROUTE, status="404") == 1
    assert value(scraped, REQUESTS, method="DELETE", route=TASK_ROUTE, status="204") == 1


async def test_no_user_id_and_no_raw_path_becomes_a_label(alice: Caller) -> None:
    task = await alice.create_task(title="Water the plants")
    assert (await alice.request("GET", f"/tasks/{task['id']}")).status_code == 200
    stray = f"/no-such-page-{uuid.uuid4().hex}"
    assert (await alice.client.get(stray)).status_code == 404

    text = (await alice.client.get("/metrics")).text
    assert alice.id not in text
    assert task["id"] not in text
    assert stray not in text
    assert value(samples(text), REQUESTS, method="GET", route="unmatched", status="404") == 1


async def test_a_request_refused_before_routing_is_counted_under_its_route(alice: Caller) -> None:
    assert (await alice.client.get(alice.url("/tasks"))).status_code == 401
    assert (
        await alice.client.get(alice.url("/tasks"), headers={"Authorization": "Bearer nonsense"})
    ).status_code == 401

    scraped = await scrape(alice.client)
    assert value(scraped, REQUESTS, method="GET", route="/api/{user_id}/tasks", status="401") == 2
    assert value(scraped, REQUESTS, method="GET", route="unmatched", status="401") == 0


async def test_methods_the_api_does_not_know_share_one_label(alice: Caller) -> None:
    for method in ("BREW", "PROPFIND"):
        response = await alice.request(method, "/tasks")
        assert response.status_code == 405

    scraped = await scrape(alice.client)
    assert value(scraped, REQUESTS, method="other", route="/api/{user_id}/tasks", status="405") == 2
    assert "BREW" not in str(scraped)


async def test_request_latency_is_a_histogram_by_route(alice: Caller) -> None:
    for _ in range(3):
        assert (await alice.request("GET", "/tasks")).status_code == 200

    scraped = await scrape(alice.client)
    labels = {"method": "GET", "route": "/api/{user_id}/tasks"}
    buckets = sorted(
        (float(dict(key)["le"]), count)
        for (name, key), count in scraped.items()
        if name == f"{LATENCY}_bucket" and labels.items() <= dict(key).items()
    )
    assert value(scraped, f"{LATENCY}_count", **labels) == 3
    assert buckets[-1] == (float("inf"), 3)
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
    assert 0 < value(scraped, f"{LATENCY}_sum", **labels) < 60


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


async def test_connections_in_use_are_gauged(store: SqlStore) -> None:
    async with api_client(store) as client:
        assert value(await scrape(client), "todo_db_pool_connections_in_use") == 0
        if store.pool is not None:
            async with store.pool.connection(), store.pool.connection():
                assert value(await scrape(client), "todo_db_pool_connections_in_use") == 2
        else:
            async with store.engine.connect(), store.engine.connect():
                assert value(await scrape(client), "todo_db_pool_connections_in_use") == 2
        assert value(await scrape(client), "todo_db_pool_connections_in_use") == 0


@pytest.mark.postgres
async def test_requests_waiting_for_a_connection_are_gauged(
    postgres_store: SqlStore, new_user: Callable[[], str]
) -> None:
    pool = postgres_store.pool
    assert pool is not None
    async with api_client(postgres_store) as client:
        user = Caller(client, new_user())
        async with contextlib.AsyncExitStack() as held:
            for _ in range(POOL_SIZE):
                await held.enter_async_context(pool.connection())
            waiting = asyncio.create_task(user.request("GET", "/tasks"))
            deadline = asyncio.get_running_loop().time() + GAUGE_SECONDS
            while value(scraped := await scrape(client), "todo_db_pool_requests_waiting") < 1:
                assert asyncio.get_running_loop().time() < deadline, "the waiting request was not gauged"
                await asyncio.sleep(0.05)
            assert value(scraped, "todo_db_pool_connections_in_use") == 5
            assert value(scraped, "todo_db_pool_requests_waiting") == 1
        assert (await asyncio.wait_for(waiting, GAUGE_SECONDS)).status_code == 200
        assert value(await scrape(client), "todo_db_pool_requests_waiting") == 0


@pytest.fixture
async def streaming_client(sqlite_store: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = build_app(sqlite_store)
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as client:
        yield client


async def test_open_event_streams_are_gauged(streaming_client: httpx.AsyncClient, new_user: Callable[[], str]) -> None:
    user = Caller(streaming_client, new_user())
    assert value(await scrape(streaming_client), "todo_event_streams_open") == 0
    async with open_events(streaming_client, user.url("/events"), user.headers) as first:
        assert first.response.status_code == 200
        async with open_events(streaming_client, user.url("/events"), user.headers) as second:
            assert second.response.status_code == 200
            assert value(await scrape(streaming_client), "todo_event_streams_open") == 2
        await wait_for_gauge(streaming_client, "todo_event_streams_open", 1)
    await wait_for_gauge(streaming_client, "todo_event_streams_open", 0)


async def wait_for_gauge(client: httpx.AsyncClient, name: str, expected: float) -> None:
    """Scrape until the gauge reads `expected` (a closed stream's app ends a moment later)."""
    deadline = asyncio.get_running_loop().time() + APP_EXIT_SECONDS
    while (found := value(await scrape(client), name)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{name} stayed {found}, not {expected}"
        await asyncio.sleep(0.05)


async def test_with_a_metrics_token_only_its_bearer_may_scrape(sqlite_store: SqlStore) -> None:
    async with api_client(sqlite_store, metrics_token="scrape-me-please") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-me-please"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "todo_http_requests_total" not in refused.text
        scraped = await scrape(client, Authorization="Bearer scrape-me-please")
        assert value(scraped, REQUESTS, method="GET", route="/metrics", status="401") == 3


async def test_without_a_metrics_token_metrics_are_public_and_undocumented(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200
    document = (await client.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_a_request_that_fails_in_the_app_is_counted_as_the_500_it_gets(app: FastAPI) -> None:
    async def fails() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/fails", fails)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.get("/fails", headers={"X-Request-ID": "bug-report-7"})
        assert failed.status_code == 500
        assert failed.headers["x-request-id"] == "bug-report-7"  # what the user quotes in a report
        assert failed.headers["content-type"] == "application/problem+json"
        assert "a bug" not in failed.text
        scraped = await scrape(client)
    assert value(scraped, REQUESTS, method="GET", route="/fails", status="500") == 1
