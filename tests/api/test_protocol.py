"""HTTP-level promises: every error is problem+json, and the OpenAPI document tells the truth."""

from __future__ import annotations

import dataclasses
import re
import typing
import uuid
from typing import Any
from unittest.mock import ANY

import httpx
import orjson
from pydantic import BaseModel

from tests.api.assertions import problem
from tests.conftest import Caller, SqlStore, api_client, bearer
from todo_api.schemas.categories import CategoryRead, CategoryWrite
from todo_api.schemas.tasks import TagCount, TaskPatch, TaskRead, TaskWrite
from todo_core.category import CategoryFields
from todo_core.task import TaskFields
from todo_core.views import CATEGORY_VIEW_FIELDS, TASK_VIEW_FIELDS


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
        "/api/{user_id}/tasks/{task_id}/move": {"post"},
        "/api/{user_id}/batch": {"post"},
        "/api/{user_id}/categories": {"get", "post"},
        "/api/{user_id}/categories/{category_id}": {"get", "patch", "delete"},
        "/api/{user_id}/tags": {"get"},
        "/api/{user_id}/reminders": {"get"},
        "/api/{user_id}/settings": {"get", "put"},
        "/api/{user_id}/changes": {"get"},
        "/api/{user_id}/events": {"get"},
        "/api/{user_id}/calendar.ics": {"get"},
        "/api/{user_id}/calendar-feeds": {"get", "post"},
        "/api/{user_id}/calendar-feeds/{feed_id}": {"delete"},
        "/api/{user_id}/webhooks": {"get", "post"},
        "/api/{user_id}/webhooks/{webhook_id}": {"delete"},
        "/api/{user_id}/webhooks/{webhook_id}/deliveries": {"get"},
        "/feeds/{secret}.ics": {"get"},
        "/api/{user_id}": {"delete"},
        "/api/{user_id}/export": {"get"},
        "/api/{user_id}/import": {"post"},
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


def conforms(model: Any, body: Any) -> None:
    """The body has exactly the documented fields, each of the documented type, and null only
    where the schema allows it; a list (`list[Model]`) is a JSON array of such bodies."""
    listed = _listed_model(model)
    if listed is not None:
        assert isinstance(body, list), body
        for item in body:
            conforms(listed, item)
        return
    model.model_validate_json(orjson.dumps(body), strict=True)
    assert set(body) == set(model.model_fields), model.__name__
    for name, field in model.model_fields.items():
        item_model = _listed_model(field.annotation)
        if item_model is not None:
            for item in body[name]:
                conforms(item_model, item)


def _listed_model(annotation: Any) -> type[BaseModel] | None:
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and isinstance(arguments[0], type) and issubclass(arguments[0], BaseModel):
        return arguments[0]
    return None


async def test_every_response_matches_its_documented_schema(alice: Caller) -> None:
    category = await alice.request("POST", "/categories", json={"name": "Home", "color": "#1E90FF"})
    full = {
        "title": "Water the plants",
        "description": "balcony",
        "priority": "high",
        "due_at": "2026-12-01T09:00:00.120+01:00",
        "remind_at": "2020-12-01T08:30:00Z",
        "recurrence": "FREQ=WEEKLY;BYDAY=TU",
        "tags": ["garden", "Home"],
        "category_id": category.json()["id"],
    }
    created = await alice.request("POST", "/tasks", json=full)
    bare = await alice.request("POST", "/tasks", json={"title": "Bare"})
    task_id = created.json()["id"]
    step = await alice.request("POST", "/tasks", json={"title": "Step", "parent_id": task_id, "due_date": "2026-12-04"})
    completed = await alice.request("PATCH", f"/tasks/{task_id}/complete", json={"completed": True})
    responses: list[tuple[Any, httpx.Response]] = [
        (CategoryRead, category),
        (CategoryRead, await alice.request("GET", f"/categories/{category.json()['id']}")),
        (CategoryRead, await alice.request("PATCH", f"/categories/{category.json()['id']}", json={"color": None})),
        (list[CategoryRead], await alice.request("GET", "/categories")),
        (TaskRead, created),
        (TaskRead, bare),
        (TaskRead, completed),
        (TaskRead, await alice.request("GET", f"/tasks/{task_id}")),
        (TaskRead, await alice.request("GET", f"/tasks/{bare.json()['id']}")),
        (TaskRead, await alice.request("PUT", f"/tasks/{bare.json()['id']}", json={"title": "Still bare"})),
        (TaskRead, await alice.request("PATCH", f"/tasks/{task_id}", json={"description": None})),
        (TaskRead, step),
        (TaskRead, await alice.request("POST", f"/tasks/{step.json()['id']}/move", json={"parent_id": None})),
        (list[TaskRead], await alice.request("GET", "/tasks", params={"limit": 1})),
        (list[TaskRead], await alice.request("GET", "/tasks", params={"sort": "-due_at"})),
        (list[TaskRead], await alice.request("GET", "/reminders", params={"until": "2030-01-01T00:00:00Z"})),
        (list[TagCount], await alice.request("GET", "/tags")),
    ]
    for model, response in responses:
        assert response.status_code in (200, 201), response.text
        conforms(model, response.json())
    # Every nullable field of a task was seen both null and set, so both forms were checked.
    tasks = [response.json() for model, response in responses if model is TaskRead]
    for name, field in TaskRead.model_fields.items():
        if type(None) in typing.get_args(field.annotation):
            assert {task[name] is None for task in tasks} == {True, False}, name


async def test_a_task_reads_the_same_from_every_route(alice: Caller) -> None:
    """Writes answer with the entity's view; reads with the store's: one shape, to the byte."""
    created = await alice.request(
        "POST", "/tasks", json={"title": "t", "due_at": "2026-12-01T09:00:00.5Z", "tags": ["a"], "priority": "low"}
    )
    task_id = created.json()["id"]
    read = await alice.request("GET", f"/tasks/{task_id}")
    listed = await alice.request("GET", "/tasks")
    assert read.content == created.content
    assert listed.json() == [created.json()]
    assert created.json()["due_at"] == "2026-12-01T09:00:00.5+00:00"


async def test_a_configured_browser_origin_may_call_the_api(
    sqlite_store: SqlStore,
) -> None:
    origin = "http://localhost:3000"
    async with api_client(sqlite_store, cors_origins=[origin]) as http:
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


def test_the_wire_schemas_name_exactly_the_entitys_fields() -> None:
    """Routes turn bodies into entities, and views into responses, by field name alone."""
    assert list(TaskWrite.model_fields) == [field.name for field in dataclasses.fields(TaskFields)]
    assert list(TaskPatch.model_fields) == list(TaskWrite.model_fields)
    assert set(TaskRead.model_fields) == set(TASK_VIEW_FIELDS)
    assert list(CategoryWrite.model_fields) == [field.name for field in dataclasses.fields(CategoryFields)]
    assert set(CategoryRead.model_fields) == set(CATEGORY_VIEW_FIELDS)


async def test_openapi_links_lead_from_a_returned_resource_to_the_operations_on_it(alice: Caller) -> None:
    document = (await alice.client.get("/openapi.json")).json()
    operations = {
        operation["operationId"]: (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    def targets(method: str, path: str, status: str) -> set[tuple[str, str]]:
        links = document["paths"][path][method]["responses"][status].get("links", {})
        return {operations[link["operationId"]] for link in links.values()}

    task = "/api/{user_id}/tasks/{task_id}"
    on_a_task = {
        ("get", task), ("put", task), ("patch", task), ("delete", task),
        ("patch", f"{task}/complete"), ("post", f"{task}/move"),
    }  # fmt: skip
    category = "/api/{user_id}/categories/{category_id}"
    on_a_category = {("get", category), ("patch", category), ("delete", category)}
    assert targets("post", "/api/{user_id}/tasks", "201") == on_a_task
    assert targets("patch", f"{task}/complete", "200") == on_a_task - {("patch", f"{task}/complete")}
    assert targets("post", "/api/{user_id}/categories", "201") == on_a_category
    assert targets("get", category, "200") == on_a_category - {("get", category)}
    assert targets("get", "/api/{user_id}/tasks", "200") == set()  # a page is not a task
    assert targets("delete", task, "204") == set()  # nothing comes back to follow

    # Followed from a created task, each link reaches that very task.
    for link in document["paths"]["/api/{user_id}/tasks"]["post"]["responses"]["201"]["links"].values():
        created = await alice.create_task(title="Linked")
        known = {"$request.path.user_id": alice.id, "$response.body#/id": created["id"]}
        method, path = operations[link["operationId"]]
        url = path.format(**{name: known[expression] for name, expression in link["parameters"].items()})
        body = {"title": "Linked"} if path == task and method in {"put", "patch"} else None
        body = {"after": None} if path.endswith("/move") else body
        response = await alice.client.request(method, url, headers=alice.headers, json=body)
        assert response.status_code in {200, 204}, (method, path, response.text)
        if response.status_code == 200:
            assert response.json()["id"] == created["id"]


def _route_url(path: str, user_id: str) -> str:
    """A route's path template filled in: the caller's user, any id, any secret."""
    values = {"user_id": user_id, "secret": "no-such-secret", "name": "validation-error"}
    return re.sub(r"\{(\w+)\}", lambda found: values.get(found[1], str(uuid.UUID(int=1))), path)


#: Routes the document leaves out, which refuse unknown query parameters too. (Not /docs,
#: /redoc and /docs/oauth2-redirect: pages for people, and the redirect gets OAuth's parameters.)
_UNDOCUMENTED = [("GET", "/metrics"), ("GET", "/problems"), ("GET", "/problems/{name}")]


async def test_every_route_refuses_an_unknown_query_parameter_naming_the_ones_it_knows(alice: Caller) -> None:
    # `?search=` for `?q=`, `?order=desc` for `?sort=-…`: a typo must not quietly answer
    # something else, on any route; and the parameters it names are those the document lists.
    documented = (await alice.client.get("/openapi.json")).json()["paths"]
    routes = [(method.upper(), path) for path, operations in documented.items() for method in operations]
    assert len(routes) > 25
    for method, path in [*routes, *_UNDOCUMENTED]:
        response = await alice.client.request(
            method, _route_url(path, alice.id), params={"search": "milk", "order": "desc"}, headers=alice.headers
        )
        body = problem(response, 422)
        assert body["type"] == "/problems/validation-error", (method, path)
        assert body["errors"] == [{"field": "search", "message": ANY}, {"field": "order", "message": ANY}], path
        operation = documented.get(path, {}).get(method.lower())
        if operation is None:
            continue
        assert "422" in operation["responses"], (method, path)
        known = sorted(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
        said = ", ".join(f"`{name}`" for name in known) if known else "none"
        assert body["detail"] == f"Unknown query parameters `search`, `order`: it takes {said}.", (method, path)


async def test_a_task_list_names_the_unknown_parameter_and_what_to_send(alice: Caller) -> None:
    await alice.create_task(title="Milk")
    body = problem(await alice.request("GET", "/tasks", params={"search": "Milk"}), 422)
    assert body["errors"] == [{"field": "search", "message": ANY}]
    assert "`q`" in str(body["detail"]) and "`sort`" in str(body["detail"])
    # The known parameters still work, repeated or blank.
    listed = await alice.request("GET", "/tasks", params={"q": "milk", "tag": [], "priority": ["none", "low"]})
    assert [task["title"] for task in listed.json()] == ["Milk"]


async def test_every_list_is_a_json_array_documented_with_its_link_header(alice: Caller) -> None:
    webhook = await alice.request("POST", "/webhooks", json={"url": "https://93.184.215.14/hook"})
    assert webhook.status_code == 201, webhook.text
    task = await alice.create_task(tags=["home"], remind_at="2020-01-01T00:00:00Z")  # one delivery
    await alice.request("POST", "/categories", json={"name": "Home"})
    await alice.request("POST", "/calendar-feeds")
    document = (await alice.client.get("/openapi.json")).json()
    lists = {
        path: operation["responses"]["200"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method == "get" and operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
        if operation["responses"]["200"]["content"]["application/json"]["schema"].get("type") == "array"
    }
    assert set(lists) == {
        "/api/{user_id}/tasks",
        "/api/{user_id}/categories",
        "/api/{user_id}/tags",
        "/api/{user_id}/reminders",
        "/api/{user_id}/calendar-feeds",
        "/api/{user_id}/webhooks",
        "/api/{user_id}/webhooks/{webhook_id}/deliveries",
    }
    for path, response in lists.items():
        assert response["headers"]["Link"] == {"$ref": "#/components/headers/Link"}, path
        url = _route_url(path, alice.id).replace(str(uuid.UUID(int=1)), webhook.json()["id"])
        listed = await alice.client.get(url, headers=alice.headers)
        assert listed.status_code == 200, listed.text
        assert isinstance(listed.json(), list) and len(listed.json()) == 1, (path, listed.text)
        assert "link" not in listed.headers  # one page
    assert 'rel="next"' in document["components"]["headers"]["Link"]["description"]
    assert (await alice.request("GET", "/reminders")).json()[0]["id"] == task["id"]
