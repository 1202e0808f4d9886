"""Batches over HTTP: several task operations in one request, all applied or none."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.assertions import problem
from tests.conftest import Caller

ZERO_ID = "00000000-0000-0000-0000-000000000000"


async def batch(caller: Caller, *operations: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return await caller.request("POST", "/batch", json={"operations": list(operations)}, **kwargs)


async def applied(caller: Caller, *operations: dict[str, Any]) -> list[dict[str, Any]]:
    response = await batch(caller, *operations)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def every_task(caller: Caller, **params: Any) -> list[dict[str, Any]]:
    response = await caller.request("GET", "/tasks", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


async def top_level_order(caller: Caller) -> list[str]:
    return [task["title"] for task in await every_task(caller, sort="position", top_level="true")]


def batch_problem(response: httpx.Response, status: int, operation: int) -> dict[str, Any]:
    """A failed batch's problem: the operation's status and index, and its own problem."""
    body: dict[str, Any] = problem(response, status)
    assert body["type"] == "/problems/batch-failed"
    assert body["operation"] == operation
    assert body["problem"]["status"] == status
    return body


async def test_clear_all_completed_tasks_with_one_batch(alice: Caller) -> None:
    for title in ("Milk", "Bread", "Eggs", "Jam"):
        await alice.create_task(title=title, completed=title in ("Milk", "Eggs", "Jam"))
    completed = await every_task(alice, status="completed")

    results = await applied(alice, *({"op": "delete", "id": task["id"]} for task in completed))

    assert results == [{"status": 204, "body": None}] * 3
    assert [task["title"] for task in await every_task(alice)] == ["Bread"]
    for task in completed:
        assert (await alice.request("GET", f"/tasks/{task['id']}")).status_code == 404


async def test_move_a_dozen_tasks_in_one_batch_and_see_all_or_nothing(alice: Caller) -> None:
    tasks = [await alice.create_task(title=f"T{n:02}") for n in range(12)]
    reversed_order = [f"T{n:02}" for n in reversed(range(12))]
    # Each task first in turn: the last one moved ends first, so the order is reversed.
    moves = [{"op": "move", "id": task["id"], "body": {"after": None}, "if_match": '"1"'} for task in tasks]
    stale = [*moves[:7], {**moves[7], "if_match": '"9"'}, *moves[8:]]

    refused = batch_problem(await batch(alice, *stale), 412, operation=7)
    assert refused["problem"]["type"] == "/problems/precondition-failed"
    assert await top_level_order(alice) == [f"T{n:02}" for n in range(12)]  # nothing moved
    assert {task["version"] for task in await every_task(alice)} == {1}

    results = await applied(alice, *moves)
    assert [result["status"] for result in results] == [200] * 12
    assert [result["body"]["id"] for result in results] == [task["id"] for task in tasks]
    assert await top_level_order(alice) == reversed_order


async def test_a_create_names_its_task_and_later_operations_use_the_name(alice: Caller) -> None:
    results = await applied(
        alice,
        {"op": "create", "ref": "trip", "body": {"title": "Trip"}},
        {"op": "create", "ref": "pack", "body": {"title": "Pack", "parent_id": "$ref:trip"}},
        {"op": "create", "ref": "tickets", "body": {"title": "Tickets", "parent_id": "$ref:trip"}},
        {"op": "move", "id": "$ref:tickets", "body": {"after": None}},
        {"op": "patch", "id": "$ref:pack", "body": {"priority": "high"}},
        {"op": "complete", "id": "$ref:tickets"},
    )

    trip, pack, tickets = (result["body"] for result in results[:3])
    assert [result["status"] for result in results] == [201, 201, 201, 200, 200, 200]
    assert pack["parent_id"] == tickets["parent_id"] == trip["id"]
    steps = await every_task(alice, parent_id=trip["id"], sort="position")
    assert [(step["title"], step["priority"], step["completed"]) for step in steps] == [
        ("Tickets", "none", True),
        ("Pack", "high", False),
    ]
    assert results[4]["body"]["version"] == 2  # the task as it stands after that operation


async def test_a_ref_no_earlier_create_made_is_a_422_naming_the_operation_and_field(alice: Caller) -> None:
    later = await batch(
        alice,
        {"op": "create", "body": {"title": "Shop"}},
        {"op": "create", "body": {"title": "Milk", "parent_id": "$ref:shop"}},
        {"op": "create", "ref": "shop", "body": {"title": "Shop again"}},
    )
    body = batch_problem(later, 422, operation=1)
    assert body["errors"] == [{"field": "operations[1].body.parent_id", "message": body["errors"][0]["message"]}]
    assert "shop" in body["errors"][0]["message"]
    unknown = await batch(alice, {"op": "delete", "id": "$ref:nothing"})
    assert [error["field"] for error in batch_problem(unknown, 422, operation=0)["errors"]] == ["operations[0].id"]
    twice = await batch(alice, *({"op": "create", "ref": "x", "body": {"title": "X"}} for _ in range(2)))
    assert [error["field"] for error in batch_problem(twice, 422, operation=1)["errors"]] == ["operations[1].ref"]
    assert await every_task(alice) == []


async def test_a_failing_operation_at_the_end_leaves_nothing_applied(alice: Caller) -> None:
    kept = await alice.create_task(title="Kept")
    response = await batch(
        alice,
        {"op": "create", "body": {"title": "New"}},
        {"op": "patch", "id": kept["id"], "body": {"title": "Renamed"}},
        {"op": "delete", "id": kept["id"]},
        {"op": "create", "body": {"title": "   "}},
    )

    body = batch_problem(response, 422, operation=3)
    single = problem(await alice.request("POST", "/tasks", json={"title": "   "}), 422)
    assert {key: body["problem"][key] for key in ("type", "status", "errors")} == {
        key: single[key] for key in ("type", "status", "errors")
    }
    assert body["errors"] == [{"field": "operations[3].body.title", "message": single["errors"][0]["message"]}]  # type: ignore[index]
    assert await every_task(alice) == [kept]


async def test_a_body_its_single_route_refuses_is_refused_the_same(alice: Caller) -> None:
    task = await alice.create_task()
    single = problem(await alice.request("PATCH", f"/tasks/{task['id']}", json={"tags": ["a", 3], "done": 1}), 422)

    response = await batch(alice, {"op": "patch", "id": task["id"], "body": {"tags": ["a", 3], "done": 1}})

    body = batch_problem(response, 422, operation=0)
    assert {key: body["problem"][key] for key in single} == single
    assert sorted(error["field"] for error in body["errors"]) == [
        "operations[0].body.done",
        "operations[0].body.tags[1]",
    ]


async def test_another_users_task_in_a_batch_is_the_same_404_as_a_missing_one(alice: Caller, bob: Caller) -> None:
    bobs = await bob.create_task(title="Bob's")

    for task_id in (bobs["id"], ZERO_ID):
        response = await batch(
            alice,
            {"op": "create", "body": {"title": "Mine"}},
            {"op": "complete", "id": task_id, "body": {"completed": True}},
        )
        body = batch_problem(response, 404, operation=1)
        assert body["problem"]["type"] == "/problems/not-found"
        assert (
            body["detail"]
            == f"Operation 1 failed ({body['problem']['detail']}), so no operation of the batch was applied."
        )
    assert await every_task(alice) == []
    assert (await bob.request("GET", f"/tasks/{bobs['id']}")).json() == bobs


async def test_a_batch_holds_1_to_100_operations(alice: Caller) -> None:
    create = {"op": "create", "body": {"title": "T"}}

    for count in (0, 101):
        response = await batch(alice, *([create] * count))
        assert problem(response, 422)["errors"][0]["field"] == "operations"  # type: ignore[index]
    assert len(await applied(alice, *([create] * 100))) == 100
    assert len(await every_task(alice)) == 100


async def test_an_operation_with_fields_its_kind_does_not_take_is_refused(alice: Caller) -> None:
    task = await alice.create_task()
    cases = [
        ({"op": "create", "id": task["id"], "body": {"title": "T"}}, "operations[0].id"),
        ({"op": "create", "body": {"title": "T"}, "if_match": '"1"'}, "operations[0].if_match"),
        ({"op": "delete", "id": task["id"], "ref": "r"}, "operations[0].ref"),
        ({"op": "delete", "id": task["id"], "body": {}}, "operations[0].body"),
        ({"op": "update", "id": task["id"]}, "operations[0].body"),
        ({"op": "patch", "body": {}}, "operations[0].id"),
        ({"op": "move", "id": "not-an-id", "body": {}}, "operations[0].id"),
        ({"op": "move", "id": task["id"], "body": {"after": "$ref:"}}, "operations[0].body.after"),
    ]
    for operation, field in cases:
        body = batch_problem(await batch(alice, operation), 422, operation=0)
        assert [error["field"] for error in body["errors"]] == [field], operation
    unknown = problem(await batch(alice, {"op": "archive", "id": task["id"]}), 422)
    assert [error["field"] for error in unknown["errors"]] == ["operations[0].op"]  # type: ignore[attr-defined]
    assert await every_task(alice) == [task]


async def test_a_retried_batch_with_an_idempotency_key_gets_the_same_answer_and_creates_nothing_twice(
    alice: Caller,
) -> None:
    operations = [{"op": "create", "ref": "a", "body": {"title": "A"}}, {"op": "complete", "id": "$ref:a"}]
    headers = {"Idempotency-Key": "batch-1"}

    first = await batch(alice, *operations, headers=headers)
    again = await batch(alice, *operations, headers=headers)
    other = await batch(alice, operations[0], headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert problem(other, 422)["type"] == "/problems/idempotency-key-reused"
    assert [task["title"] for task in await every_task(alice)] == ["A"]


async def test_a_complete_with_an_empty_body_toggles_as_the_single_route_does(alice: Caller) -> None:
    results = await applied(
        alice,
        {"op": "create", "ref": "a", "body": {"title": "A"}},
        {"op": "complete", "id": "$ref:a", "body": {}},
        {"op": "complete", "id": "$ref:a", "body": {}},
        {"op": "complete", "id": "$ref:a"},
    )

    assert [result["body"]["completed"] for result in results] == [False, True, False, True]
