"""Export and import over HTTP: an account moves to another and comes out the same."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.api.assertions import field_errors, problem
from tests.conftest import Caller, SqlStore, api_client, bearer
from todo_adapters.sqlalchemy.engine import create_engine
from todo_core.portability import EXPORTED_TASK_FIELDS

#: What an export writes that an import does not keep: the ids (new ones), and the instants
#: of the export and of the last change (the import is one).
_NOT_KEPT = {"exported_at", "updated_at"}


async def export_of(caller: Caller) -> dict[str, Any]:
    response = await caller.request("GET", "/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


async def import_into(caller: Caller, document: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await caller.request("POST", "/import", json=document, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each id replaced by where its category or task stands in the
    document, and without what an import does not keep."""
    categories = {category["id"]: f"categories[{n}]" for n, category in enumerate(document["categories"])}
    tasks = {task["id"]: f"tasks[{n}]" for n, task in enumerate(document["tasks"])}

    def relinked(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        item = {name: value for name, value in item.items() if name not in _NOT_KEPT}
        item["id"] = names[item["id"]]
        for link, targets in (("parent_id", tasks), ("next_occurrence_id", tasks), ("category_id", categories)):
            if item.get(link) is not None:
                item[link] = targets[item[link]]
        return item

    return {
        **{name: value for name, value in document.items() if name not in _NOT_KEPT},
        "categories": [relinked(category, categories) for category in document["categories"]],
        "tasks": [relinked(task, tasks) for task in document["tasks"]],
    }


async def a_varied_account(caller: Caller) -> None:
    """Settings, two categories, steps three levels deep in a moved order, all-day and timed
    due dates, repeat rules, tags, time zones, a completed task and a completed repeating one."""
    assert (await caller.request("PUT", "/settings", json={"time_zone": "Europe/Berlin"})).status_code == 200
    home = (await caller.request("POST", "/categories", json={"name": "Home", "color": "#1e90ff"})).json()
    work = (await caller.request("POST", "/categories", json={"name": "Work"})).json()
    party = await caller.create_task(title="Plan the party", category_id=home["id"], tags=["fun", "Family"])
    food = await caller.create_task(title="Food", parent_id=party["id"], priority="high")
    await caller.create_task(title="Invite friends", parent_id=party["id"], due_date="2026-12-04")
    await caller.create_task(title="Bake a cake", parent_id=food["id"], description="Chocolate")
    await caller.create_task(title="Buy drinks", parent_id=food["id"], time_zone="America/New_York")
    moved = await caller.request("POST", f"/tasks/{food['id']}/move", json={"after": None})
    assert moved.status_code == 200
    await caller.create_task(
        title="Stand-up",
        category_id=work["id"],
        due_at="2026-12-01T09:00:00Z",
        remind_at="2026-12-01T08:45:00Z",
        recurrence="FREQ=WEEKLY;BYDAY=MO,WE",
    )
    review = await caller.create_task(title="Weekly review", due_date="2026-12-04", recurrence="FREQ=WEEKLY")
    await caller.create_task(title="Clear the inbox", parent_id=review["id"])
    done = await caller.request("PATCH", f"/tasks/{review['id']}/complete", json={"completed": True})
    assert done.json()["next_occurrence_id"] is not None
    filed = await caller.create_task(title="File taxes", completed=True, time_zone="Asia/Tokyo")
    await caller.request("POST", f"/tasks/{filed['id']}/move", json={"after": None})


async def test_an_account_imported_elsewhere_exports_the_same_document_apart_from_ids(
    alice: Caller, bob: Caller
) -> None:
    await a_varied_account(alice)
    original = await export_of(alice)

    result = await import_into(bob, original)
    again = await export_of(bob)

    assert (result["categories"], result["merged_categories"], result["tasks"]) == (2, 0, len(original["tasks"]))
    assert without_ids(again) == without_ids(original)
    assert original["format"] == "todo-export" and original["version"] == 1
    assert original["settings"] == {"time_zone": "Europe/Berlin"}
    assert {task["id"] for task in again["tasks"]} == {str(new) for new in result["ids"]["tasks"].values()}
    assert not {task["id"] for task in again["tasks"]} & {task["id"] for task in original["tasks"]}
    assert list(original["tasks"][0]) == list(EXPORTED_TASK_FIELDS)
    listed = (await bob.request("GET", "/tasks", params={"limit": 200})).json()
    assert len(listed) == len(original["tasks"]) == 11


async def test_a_bad_document_is_422_naming_where_and_imports_nothing(alice: Caller, bob: Caller) -> None:
    await a_varied_account(alice)
    document = await export_of(alice)
    document["tasks"][2]["title"] = "   "
    document["tasks"][3]["parent_id"] = str(uuid.uuid4())
    document["tasks"][4]["priority"] = "urgent"

    shape = await bob.request("POST", "/import", json=document)
    assert field_errors(shape) == {"tasks[4].priority"}  # the shape is checked first
    document["tasks"][4]["priority"] = "low"
    rules = await bob.request("POST", "/import", json=document)
    assert field_errors(rules) == {"tasks[2].title", "tasks[3].parent_id"}

    assert (await bob.request("GET", "/tasks")).json() == []
    assert (await bob.request("GET", "/categories")).json() == []
    assert (await bob.request("GET", "/settings")).json() == {"time_zone": "UTC"}


async def test_an_export_holds_the_users_data_and_no_one_elses(alice: Caller, bob: Caller) -> None:
    await a_varied_account(alice)
    await bob.create_task(title="Bob's own")

    document = await export_of(bob)

    assert [task["title"] for task in document["tasks"]] == ["Bob's own"]
    assert document["categories"] == []
    problem(await bob.client.get(alice.url("/export"), headers=bob.headers), 403)
    problem(await bob.client.post(alice.url("/import"), headers=bob.headers, json=document), 403)
    assert len((await export_of(alice))["tasks"]) == 11


def a_large_document(steps_per_task: int, top_level: int) -> dict[str, Any]:
    """`top_level` tasks with an 800-character description, each with `steps_per_task` steps."""
    tasks: list[dict[str, Any]] = []
    for n in range(top_level):
        parent = str(uuid.UUID(int=n + 1))
        tasks.append({"id": parent, "title": f"Task {n:04}", "tags": [f"tag-{n % 7}"], "description": "A note. " * 100})
        tasks += [
            {"id": str(uuid.uuid4()), "title": f"Step {n:04}.{k}", "parent_id": parent} for k in range(steps_per_task)
        ]
    return {"format": "todo-export", "version": 1, "tasks": tasks}


async def test_a_large_account_exports_every_task_once_in_structure_order(alice: Caller, bob: Caller) -> None:
    document = a_large_document(steps_per_task=2, top_level=1000)  # 3,000 tasks, over 1 MB
    assert len(json.dumps(document)) > 1_000_000  # more than any other request may send

    result = await import_into(alice, document)
    exported = await export_of(alice)

    assert result["tasks"] == 3000
    titles = [task["title"] for task in exported["tasks"]]
    assert titles[:1000] == [f"Task {n:04}" for n in range(1000)]  # the top level, in order
    steps = titles[1000:]
    assert sorted(steps) == sorted(task["title"] for task in document["tasks"] if "parent_id" in task)
    assert len({task["id"] for task in exported["tasks"]}) == 3000
    assert [task["title"] for task in (await export_of(bob))["tasks"]] == []


async def test_a_retried_import_with_the_same_key_imports_once(alice: Caller) -> None:
    document = a_large_document(steps_per_task=1, top_level=3)
    first = await import_into(alice, document, **{"Idempotency-Key": "import-1"})
    retry = await alice.request("POST", "/import", json=document, headers={"Idempotency-Key": "import-1"})

    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first
    assert len((await export_of(alice))["tasks"]) == 6


async def test_an_import_may_be_larger_than_other_requests_up_to_its_own_limit(sqlite_store: SqlStore) -> None:
    async with api_client(sqlite_store, max_body_bytes=2048, max_import_bytes=16_384) as http:
        user = f"user-{uuid.uuid4().hex[:16]}"
        caller = Caller(http, user)
        document = a_large_document(steps_per_task=1, top_level=12)
        size = len(json.dumps(document))
        assert 2048 < size < 16_384, size
        problem(await caller.request("POST", "/tasks", json={"title": "x", "description": "y" * size}), 413)

        assert (await caller.request("POST", "/import", json=document)).status_code == 201
        too_large = a_large_document(steps_per_task=1, top_level=100)
        problem(await caller.request("POST", "/import", json=too_large), 413)
        chunked = await http.post(
            f"/api/{user}/import",
            headers={**bearer(user), "Content-Type": "application/json"},
            content=_chunks(json.dumps(too_large).encode()),
        )
        problem(chunked, 413)
        assert len((await export_of(caller))["tasks"]) == 24


async def _chunks(body: bytes) -> Any:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


async def test_a_database_that_cannot_be_reached_is_a_503_not_a_cut_document(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/no/such/directory/todo.db"
    engine = create_engine(url)
    try:
        async with api_client(SqlStore(url, engine, sqlite_store.views, None)) as http:
            user = f"user-{uuid.uuid4().hex[:16]}"
            response = await http.get(f"/api/{user}/export", headers=bearer(user))
            assert problem(response, 503)["type"] == "/problems/unavailable"
    finally:
        await engine.dispose()
