"""The contract front ends meet: strict input, clear messages, and an OpenAPI document that says
everything the service does (operation ids, named enums, headers, problem types)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.api.assertions import field_errors, next_cursor, problem
from tests.conftest import Caller
from todo_api.problem_types import PROBLEM_TYPES
from todo_api.schemas import tasks as task_schemas
from todo_core.portability import EXPORTED_TASK_FIELDS
from todo_core.query import SortField, Status
from todo_core.task import Priority

# Strict input


@pytest.mark.parametrize(
    ("method", "path", "body", "unknown"),
    [
        ("POST", "/tasks", {"title": "x", "done": True}, "done"),
        ("PUT", "/tasks/{task}", {"title": "x", "due": "tomorrow"}, "due"),
        ("PATCH", "/tasks/{task}", {"colour": "red"}, "colour"),
        ("PATCH", "/tasks/{task}/complete", {"completed": True, "when": "now"}, "when"),
        ("POST", "/categories", {"name": "Home", "colour": "#ffffff"}, "colour"),
        ("PATCH", "/categories/{category}", {"nme": "Typo"}, "nme"),
    ],
)
async def test_a_body_field_the_schema_does_not_know_is_422_naming_it(
    alice: Caller, method: str, path: str, body: dict[str, Any], unknown: str
) -> None:
    task = await alice.create_task(title="Kept as it is")
    category = (await alice.request("POST", "/categories", json={"name": "Work"})).json()
    url = path.format(task=task["id"], category=category["id"])

    assert field_errors(await alice.request(method, url, json=body)) == {unknown}
    assert (await alice.request("GET", f"/tasks/{task['id']}")).json() == task


@pytest.mark.parametrize(
    ("method", "headers", "content"),
    [
        ("POST", {}, b'{"title": "x"}'),
        ("POST", {"Content-Type": "text/plain"}, b'{"title": "x"}'),
        ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"title=x"),
        ("POST", {"Content-Type": "application/merge-patch+json"}, b'{"title": "x"}'),  # not a patch
    ],
)
async def test_a_body_not_declared_as_json_is_415_saying_what_to_send(
    alice: Caller, method: str, headers: dict[str, str], content: bytes
) -> None:
    body = problem(await alice.request(method, "/tasks", headers=headers, content=content), 415)
    assert body["type"] == "/problems/unsupported-media-type"
    assert "application/json" in str(body["detail"])
    assert (await alice.request("GET", "/tasks")).json() == []


async def test_a_patch_may_be_sent_as_a_merge_patch(alice: Caller) -> None:
    task = await alice.create_task(title="Old")
    headers = {"Content-Type": "application/merge-patch+json; charset=utf-8"}
    response = await alice.request("PATCH", f"/tasks/{task['id']}", headers=headers, content=b'{"title": "New"}')
    assert response.status_code == 200 and response.json()["title"] == "New"


@pytest.mark.parametrize("content", [b'{"title": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000, b'{"title": '])
async def test_any_unparsable_body_is_the_same_malformed_json_problem(alice: Caller, content: bytes) -> None:
    response = await alice.request("POST", "/tasks", headers={"Content-Type": "application/json"}, content=content)
    assert problem(response, 400)["type"] == "/problems/malformed-json"


async def test_validation_messages_carry_no_library_prefix(alice: Caller) -> None:
    responses = [
        await alice.request("POST", "/tasks", json={"title": "x", "due_at": "1700000000"}),
        await alice.request("GET", "/tasks", params={"due_before": "soon"}),
        await alice.request("POST", "/tasks", json={"title": "x", "priority": "urgent"}),
    ]
    for response in responses:
        for error in problem(response, 422)["errors"]:  # type: ignore[attr-defined]
            assert not error["message"].startswith(("Value error", "Assertion failed")), error


async def test_an_offset_whose_plus_arrived_as_a_space_is_explained(alice: Caller) -> None:
    # `?due_before=2026-01-01T00:00:00+01:00` sent unencoded: the `+` arrives as a space.
    response = await alice.client.get(alice.url("/tasks?due_before=2026-01-01T00:00:00+01:00"), headers=alice.headers)
    (error,) = problem(response, 422)["errors"]  # type: ignore[misc]
    assert error["field"] == "due_before" and "%2B" in error["message"]


async def test_a_cursor_sent_with_another_sort_says_to_send_the_same_sort_and_filters(alice: Caller) -> None:
    for n in range(3):
        await alice.create_task(title=f"Task {n}")
    cursor = next_cursor(await alice.request("GET", "/tasks", params={"limit": 1}))
    body = problem(await alice.request("GET", "/tasks", params={"limit": 1, "cursor": cursor, "sort": "title"}), 400)
    assert body["type"] == "/problems/invalid-cursor"
    assert "same `sort` and filters" in str(body["detail"])


async def test_completing_with_a_stale_if_match_is_412_and_changes_nothing(alice: Caller) -> None:
    task = await alice.create_task()
    await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Moved on"})

    stale = await alice.request("PATCH", f"/tasks/{task['id']}/complete", headers={"If-Match": '"1"'})
    problem(stale, 412)
    assert stale.headers["etag"] == '"2"'
    assert (await alice.request("GET", f"/tasks/{task['id']}")).json()["completed"] is False
    current = await alice.request("PATCH", f"/tasks/{task['id']}/complete", headers={"If-Match": '"2"'})
    assert current.status_code == 200 and current.json()["completed"] is True


# A user id outside Latin-1: every write answers, and nothing fails after its commit


@pytest.fixture
def jose(client: httpx.AsyncClient, new_user: Callable[[], str]) -> Caller:
    return Caller(client, f"José-π-{new_user()}")


async def test_a_user_id_beyond_latin_1_gets_every_write_answered(jose: Caller) -> None:
    created = await jose.request("POST", "/tasks", json={"title": "Café"})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.isascii() and unquote(location) == f"/api/{jose.id}/tasks/{created.json()['id']}"
    assert (await jose.client.get(location, headers=jose.headers)).json() == created.json()
    task = created.json()["id"]

    keyed = await jose.request("POST", "/tasks", json={"title": "Once"}, headers={"Idempotency-Key": "once-1"})
    assert keyed.status_code == 201, keyed.text
    assert (await jose.request("PUT", f"/tasks/{task}", json={"title": "Tea"})).status_code == 200
    assert (await jose.request("PATCH", f"/tasks/{task}", json={"title": "Thé"})).status_code == 200
    assert (await jose.request("PATCH", f"/tasks/{task}/complete")).status_code == 200
    category = await jose.request("POST", "/categories", json={"name": "Maison"})
    assert category.status_code == 201 and category.headers["location"].isascii()
    category_id = category.json()["id"]
    assert (await jose.request("PATCH", f"/categories/{category_id}", json={"name": "Casa"})).status_code == 200
    assert (await jose.request("DELETE", f"/categories/{category_id}")).status_code == 204
    assert (await jose.request("DELETE", f"/tasks/{task}")).status_code == 204
    assert (await jose.request("GET", "/changes")).status_code == 200


# The OpenAPI document


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/openapi.json")).json()
    return body


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def test_every_operation_has_a_readable_stable_id(document: dict[str, Any]) -> None:
    assert set(operations(document)) == {
        "listTasks", "createTask", "getTask", "replaceTask", "patchTask", "deleteTask", "completeTask", "moveTask",
        "runBatch",
        "listTags", "listDueReminders",
        "listCategories", "createCategory", "getCategory", "updateCategory", "deleteCategory",
        "getSettings", "replaceSettings",
        "listChanges", "streamChangeEvents",
        "getCalendar", "getCalendarFeed", "createCalendarFeed", "listCalendarFeeds", "revokeCalendarFeed",
        "createWebhook", "listWebhooks", "deleteWebhook", "listWebhookDeliveries",
        "eraseAccount",
        "exportAccount", "importAccount",
        "getHealth", "getReadiness",
    }  # fmt: skip


async def test_enumerations_are_named_schemas_equal_to_the_domains(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    assert components["Priority"]["enum"] == [p.label for p in Priority]
    assert components["TaskStatus"]["enum"] == [s.value for s in Status]
    assert components["TaskSort"]["enum"] == [sort for f in SortField for sort in (f.value, f"-{f.value}")]
    assert [p.value for p in task_schemas.Priority] == [p.label for p in Priority]
    task = components["TaskRead"]["properties"]
    assert task["priority"] == {"$ref": "#/components/schemas/Priority"}


async def test_every_header_sent_is_documented_where_it_is_sent(document: dict[str, Any]) -> None:
    for operation_id, (_, path, operation) in operations(document).items():
        responses = operation["responses"]
        for status, response in responses.items():
            headers = set(response.get("headers", {}))
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            versioned = schema.get("$ref", "").endswith(("/TaskRead", "/CategoryRead"))
            if versioned or status == "412":
                assert "ETag" in headers, (operation_id, status)
            if status == "201" and versioned:  # one task or category made: where it is, and its version
                assert {"Location", "ETag", "Idempotent-Replayed"} <= headers, operation_id
            elif status == "201":  # an import makes many, a feed has no version
                assert "ETag" not in headers, operation_id
            if status == "401":
                assert "WWW-Authenticate" in headers, operation_id
            if status == "503":
                assert "Retry-After" in headers, operation_id
        if path.startswith("/api/"):
            assert "401" in responses, operation_id
    for name, header in document["components"]["headers"].items():
        assert header["description"], name


async def test_error_responses_list_the_problem_types_they_carry(document: dict[str, Any]) -> None:
    for operation_id, (_, _, operation) in operations(document).items():
        if operation_id == "getReadiness":
            continue  # its 503 is the probe's own answer, `{"status": "unavailable"}`
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert set(response["content"]) == {"application/problem+json"}, (operation_id, status)
                narrowed = response["content"]["application/problem+json"]["schema"]["allOf"][1]
                types = narrowed["properties"]["type"].get("enum", [])
                carried = [
                    p
                    for p in PROBLEM_TYPES.values()
                    if int(status) in (p.status, *p.other_statuses) and (not p.only_in or operation_id in p.only_in)
                ]
                assert types == [p.uri for p in carried], (operation_id, status)
    problem_422 = operations(document)["createTask"][2]["responses"]["422"]["content"]["application/problem+json"]
    assert "/problems/idempotency-key-reused" in problem_422["schema"]["allOf"][1]["properties"]["type"]["enum"]


async def test_a_batch_is_documented_with_the_single_routes_bodies(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    _, path, operation = operations(document)["runBatch"]
    assert path == "/api/{user_id}/batch"
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/BatchWrite"}
    listed = components["BatchWrite"]["properties"]["operations"]
    assert (listed["minItems"], listed["maxItems"]) == (1, 100)
    one = components["BatchOperation"]["properties"]
    assert one["op"] == {"$ref": "#/components/schemas/BatchOperationName"}
    assert components["BatchOperationName"]["enum"] == ["create", "update", "patch", "complete", "move", "delete"]
    bodies = [schema.get("$ref", "").rsplit("/", 1)[-1] for schema in one["body"]["anyOf"]]
    assert bodies == ["TaskWrite", "TaskPatch", "CompletionWrite", "MoveWrite", ""]
    assert {"type": "string", "format": "uuid"} in one["id"]["anyOf"]
    result = components["BatchRead"]["properties"]["results"]["items"]
    assert components[result["$ref"].rsplit("/", 1)[-1]]["properties"]["body"]["anyOf"][0] == {
        "$ref": "#/components/schemas/TaskRead"
    }
    assert "Idempotency-Key" in {parameter["name"] for parameter in operation["parameters"]}
    for status in ("404", "412", "422"):
        problem = operation["responses"][status]["content"]["application/problem+json"]["schema"]
        assert "/problems/batch-failed" in problem["allOf"][1]["properties"]["type"]["enum"], status
        single = operations(document)["moveTask"][2]["responses"][status]["content"]["application/problem+json"]
        assert "/problems/batch-failed" not in single["schema"]["allOf"][1]["properties"]["type"]["enum"], status
    assert components["Problem"]["properties"]["problem"]["anyOf"][0] == {"$ref": "#/components/schemas/Problem"}


async def test_patch_bodies_are_merge_patches_with_the_write_limits(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for operation_id in ("patchTask", "updateCategory"):
        content = operations(document)[operation_id][2]["requestBody"]["content"]
        assert list(content) == ["application/merge-patch+json", "application/json"]
    patch, write = components["TaskPatch"]["properties"], components["TaskWrite"]["properties"]
    assert patch["title"] == write["title"]  # not nullable: a title cannot be cleared
    assert {"type": "null"} in patch["description"]["anyOf"]  # nullable: null clears it
    for tags in (write["tags"], patch["tags"]):
        assert (tags["maxItems"], tags["items"]["maxLength"]) == (20, 50)
        assert "20 tags" in tags["description"]
    category_patch = components["CategoryPatch"]["properties"]
    assert "anyOf" not in category_patch["name"] and {"type": "null"} in category_patch["color"]["anyOf"]
    assert category_patch["color"]["pattern"] == components["CategoryWrite"]["properties"]["color"]["pattern"]


async def test_export_and_import_share_one_schema_of_the_document(document: dict[str, Any]) -> None:
    exported = operations(document)["exportAccount"][2]["responses"]["200"]["content"]["application/json"]
    imported = operations(document)["importAccount"][2]["requestBody"]["content"]["application/json"]
    assert exported["schema"] == imported["schema"] == {"$ref": "#/components/schemas/AccountDocument"}
    task = document["components"]["schemas"]["ExportedTask"]["properties"]
    assert set(task) == set(EXPORTED_TASK_FIELDS)


async def test_the_document_says_who_it_is_for_and_what_is_public(document: dict[str, Any]) -> None:
    assert document["info"]["description"] and document["info"]["license"]["identifier"] == "MIT"
    assert document["servers"] and all(tag["description"] for tag in document["tags"])
    for _, path, operation in operations(document).values():
        assert operation["tags"]
        assert (operation["security"] == []) is (not path.startswith("/api/"))
