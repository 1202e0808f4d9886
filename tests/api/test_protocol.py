"""HTTP-level promises: every error is problem+json, and the OpenAPI document tells the truth."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.assertions import problem
from tests.conftest import Caller, api_client, bearer
from todo_core.ports import TaskViews


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    problem(await client.get("/no/such/route"), 404)


async def test_wrong_method_is_405_problem_with_allow(alice: Caller) -> None:
    response = await alice.request("POST", "/tags")
    problem(response, 405)
    assert response.headers["allow"] == "GET"


async def test_health_and_readiness_are_public(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}


async def test_openapi_documents_every_route_with_problem_responses(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    expected = {
        "/api/{user_id}/tasks": {"get", "post"},
        "/api/{user_id}/tasks/{task_id}": {"get", "put", "patch", "delete"},
        "/api/{user_id}/tasks/{task_id}/complete": {"patch"},
        "/api/{user_id}/categories": {"get", "post"},
        "/api/{user_id}/categories/{category_id}": {"get", "patch", "delete"},
        "/api/{user_id}/tags": {"get"},
        "/api/{user_id}/reminders": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }
    assert {path: set(operations) for path, operations in paths.items()} == expected
    create = paths["/api/{user_id}/tasks"]["post"]["responses"]
    assert create["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/TaskRead")
    for status in ("401", "403", "422"):
        assert "application/problem+json" in create[status]["content"], status
    assert "404" in paths["/api/{user_id}/tasks/{task_id}"]["get"]["responses"]
    assert "412" in paths["/api/{user_id}/tasks/{task_id}"]["put"]["responses"]
    assert "409" in paths["/api/{user_id}/categories"]["post"]["responses"]


async def test_responses_have_the_documented_fields(alice: Caller, client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    task = await alice.create_task()
    assert set(task) == set(schemas["TaskRead"]["properties"])
    category = (await alice.request("POST", "/categories", json={"name": "n"})).json()
    assert set(category) == set(schemas["CategoryRead"]["properties"])
    listed = (await alice.request("GET", "/tasks")).json()
    assert set(listed) == set(schemas["TaskPage"]["properties"])


async def test_a_configured_browser_origin_may_call_the_api(
    sqlite_url: str, sqlite_engine: AsyncEngine, sqlite_views: TaskViews
) -> None:
    origin = "http://localhost:3000"
    async with api_client(sqlite_url, sqlite_engine, sqlite_views, cors_origins=[origin]) as http:
        preflight = await http.options(
            "/api/someone/tasks",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        created = await http.post(
            "/api/someone/tasks", json={"title": "from the browser"}, headers={"Origin": origin, **bearer("someone")}
        )
        assert created.status_code == 201
        assert "etag" in created.headers["access-control-expose-headers"].lower()
        other = await http.options(
            "/api/someone/tasks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in other.headers
