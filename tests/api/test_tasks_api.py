"""The task routes over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from starlette.requests import Request

from tests.api.assertions import field_errors, next_cursor, next_page, problem
from tests.conftest import Caller, SqlStore, bearer, build_app, settings_for
from todo_api.representation import next_page_link


async def test_create_returns_201_with_location_etag_and_the_task(alice: Caller) -> None:
    response = await alice.request("POST", "/tasks", json={"title": "  Buy milk  ", "description": "2 litres"})
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == alice.url(f"/tasks/{task['id']}")
    assert response.headers["etag"] == '"1"'
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres"
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["priority"] == "none"
    assert task["tags"] == []
    assert task["version"] == 1
    assert task["created_at"] == task["updated_at"]
    assert datetime.fromisoformat(task["created_at"]).utcoffset() == timedelta(0)

    read = await alice.client.get(response.headers["location"], headers=alice.headers)
    assert read.status_code == 200
    assert read.json() == task


async def test_full_task_round_trips_with_times_in_utc(alice: Caller) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Home"})).json()
    task = await alice.create_task(
        title="Water plants",
        priority="high",
        due_at="2026-06-01T09:00:00+02:00",
        remind_at="2026-06-01T08:30:00+02:00",
        recurrence="rrule:freq=weekly;byday=mo",
        tags=[" garden ", "Garden", "weekly"],
        category_id=category["id"],
    )
    assert task["due_at"] == "2026-06-01T07:00:00+00:00"
    assert task["remind_at"] == "2026-06-01T06:30:00+00:00"
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    assert task["tags"] == ["garden", "weekly"]
    assert task["category_id"] == category["id"]
    assert task["priority"] == "high"


async def test_get_with_current_etag_is_not_modified(alice: Caller) -> None:
    task = await alice.create_task()
    response = await alice.request("GET", f"/tasks/{task['id']}", headers={"If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.content == b""
    changed = await alice.request("GET", f"/tasks/{task['id']}", headers={"If-None-Match": '"0"'})
    assert changed.status_code == 200


async def test_put_replaces_every_writable_field(alice: Caller) -> None:
    task = await alice.create_task(title="Old", description="old", tags=["x"], priority="low")
    response = await alice.request("PUT", f"/tasks/{task['id']}", json={"title": "New"})
    assert response.status_code == 200
    replaced = response.json()
    assert (replaced["title"], replaced["description"], replaced["tags"], replaced["priority"]) == (
        "New",
        "",
        [],
        "none",
    )
    assert replaced["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert replaced["created_at"] == task["created_at"]
    assert replaced["updated_at"] > task["updated_at"]


async def test_if_match_with_a_stale_version_is_412_and_changes_nothing(alice: Caller) -> None:
    task = await alice.create_task(title="Original")
    await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Second"})
    for method, body in [("PUT", {"title": "Lost"}), ("PATCH", {"title": "Lost"}), ("DELETE", None)]:
        stale = await alice.request(method, f"/tasks/{task['id']}", json=body, headers={"If-Match": '"1"'})
        assert problem(stale, 412)
        assert stale.headers["etag"] == '"2"'
    current = (await alice.request("GET", f"/tasks/{task['id']}")).json()
    assert (current["title"], current["version"]) == ("Second", 2)
    fresh = await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Third"}, headers={"If-Match": '"2"'})
    assert fresh.status_code == 200


async def test_patch_is_a_json_merge_patch(alice: Caller) -> None:
    task = await alice.create_task(
        title="Plan trip", description="book hotel", tags=["travel"], due_at="2026-07-01T10:00:00Z", priority="medium"
    )
    response = await alice.request("PATCH", f"/tasks/{task['id']}", json={"description": None, "due_at": None})
    patched = response.json()
    assert response.status_code == 200
    assert (patched["title"], patched["description"], patched["due_at"]) == ("Plan trip", "", None)
    assert (patched["tags"], patched["priority"]) == (["travel"], "medium")
    assert field_errors(await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": None})) == {"title"}


async def test_delete_is_204_then_404(alice: Caller) -> None:
    task = await alice.create_task()
    response = await alice.request("DELETE", f"/tasks/{task['id']}")
    assert response.status_code == 204
    assert response.content == b""
    problem(await alice.request("GET", f"/tasks/{task['id']}"), 404)
    problem(await alice.request("DELETE", f"/tasks/{task['id']}"), 404)


@pytest.mark.parametrize("body", [{}, {"content": b""}, {"json": {}}], ids=["no body", "empty body", "{}"])
async def test_complete_without_a_state_toggles(alice: Caller, body: dict[str, object]) -> None:
    # Front ends send no body, or `{}` with `Content-Type: application/json`: both toggle.
    task = await alice.create_task()
    done = await alice.request("PATCH", f"/tasks/{task['id']}/complete", **body)
    assert done.status_code == 200, done.text
    assert done.json()["completed"] is True
    assert done.json()["completed_at"] is not None
    undone = (await alice.request("PATCH", f"/tasks/{task['id']}/complete", **body)).json()
    assert (undone["completed"], undone["completed_at"], undone["version"]) == (False, None, 3)


async def test_complete_with_a_body_sets_the_state(alice: Caller) -> None:
    task = await alice.create_task()
    for _ in range(2):
        response = await alice.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": True})
        assert response.json()["completed"] is True
    response = await alice.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": False})
    assert response.json()["completed"] is False
    assert field_errors(await alice.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": "maybe"}))


async def test_completing_a_repeating_task_creates_the_next_one(alice: Caller) -> None:
    task = await alice.create_task(
        title="Pay rent",
        due_at="2026-01-31T09:00:00Z",
        remind_at="2026-01-30T09:00:00Z",
        recurrence="FREQ=MONTHLY;COUNT=2",
        tags=["money"],
    )
    done = (await alice.request("PATCH", f"/tasks/{task['id']}/complete")).json()
    assert done["next_occurrence_id"] is not None
    following = (await alice.request("GET", f"/tasks/{done['next_occurrence_id']}")).json()
    assert following["title"] == "Pay rent"
    assert following["completed"] is False
    assert following["due_at"] == "2026-03-31T09:00:00+00:00"  # February has no 31st
    assert following["remind_at"] == "2026-03-30T09:00:00+00:00"
    assert following["recurrence"] == "FREQ=MONTHLY;COUNT=1"
    assert following["tags"] == ["money"]
    # Toggling the first one back and forth does not fork the series.
    await alice.request("PATCH", f"/tasks/{task['id']}/complete")
    await alice.request("PATCH", f"/tasks/{task['id']}/complete")
    # The last occurrence ends the series.
    last = (await alice.request("PATCH", f"/tasks/{following['id']}/complete")).json()
    assert last["next_occurrence_id"] is None
    listed = (await alice.request("GET", "/tasks")).json()
    assert len(listed) == 2


async def test_list_pages_with_an_opaque_cursor(alice: Caller) -> None:
    for n in reversed(range(5)):  # created in the opposite order to the one asked for
        await alice.create_task(title=f"Task {n}")
    seen: list[str] = []
    links: list[str] = []
    response = await alice.request("GET", "/tasks", params={"limit": 2, "sort": "title"})
    for _ in range(5):
        seen += [task["title"] for task in response.json()]
        link = next_page(response)
        if link is None:
            break
        links.append(link)
        response = await alice.client.get(link, headers=alice.headers)
    assert seen == [f"Task {n}" for n in range(5)]
    # Each link is absolute, the request's own query and the next cursor: the client follows it.
    assert len(links) == 2
    for link in links:
        url = httpx.URL(link)
        assert (url.scheme, url.host, url.path) == ("http", "testserver", f"/api/{alice.id}/tasks")
        assert [name for name, _ in url.params.multi_items()] == ["limit", "sort", "cursor"]
        assert (url.params["limit"], url.params["sort"]) == ("2", "title")


async def test_the_last_page_has_no_link(alice: Caller) -> None:
    await alice.create_task()
    assert next_page(await alice.request("GET", "/tasks", params={"limit": 1})) is None
    assert next_page(await alice.request("GET", "/tasks")) is None
    await alice.create_task()
    assert next_page(await alice.request("GET", "/tasks", params={"limit": 1})) is not None


@pytest.mark.parametrize(
    ("settings", "root_path", "base"),
    [
        ({}, "", "http://testserver"),
        ({}, "/todo", "http://testserver/todo"),
        ({"public_url": "https://tasks.example/v1/"}, "/ignored", "https://tasks.example/v1"),
    ],
    ids=["the request's", "behind a proxy's root_path", "TODO_PUBLIC_URL"],
)
async def test_the_next_page_link_starts_where_clients_reach_the_service(
    sqlite_store: SqlStore, new_user: Callable[[], str], settings: dict[str, str], root_path: str, base: str
) -> None:
    user = f"{new_user()} ü"  # a user id that needs percent-encoding in a URL
    app, _ = build_app(sqlite_store, **settings)
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        path = f"{root_path}/api/{quote(user, safe='')}/tasks"
        for title in ("a b 1", "a b 2", "other"):
            assert (await http.post(path, json={"title": title}, headers=bearer(user))).status_code == 201
        first = await http.get(f"{path}?limit=1&sort=-title&q=a%20b", headers=bearer(user))
        link = next_page(first)
        assert link is not None
        second = await http.get(link.removeprefix("https://tasks.example/v1"), headers=bearer(user))
    # The client's own query, as it encoded it, and the next cursor.
    assert link.startswith(f"{base}/api/{quote(user, safe='')}/tasks?limit=1&sort=-title&q=a%20b&cursor=")
    assert [task["title"] for task in [*first.json(), *second.json()]] == ["a b 2", "a b 1"]
    assert next_page(second) is None
    assert "%20%C3%BC/" in link


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "", "x" * 2000, "eyJ2IjoxfQ.AAAA"])
async def test_a_forged_cursor_is_400(alice: Caller, cursor: str) -> None:
    await alice.create_task()
    response = await alice.request("GET", "/tasks", params={"cursor": cursor, "limit": 1})
    if cursor == "":
        assert response.status_code == 200  # an empty cursor is the first page
    elif len(cursor) > 1024:
        problem(response, 422)
    else:
        problem(response, 400)


async def test_a_cursor_only_works_for_the_user_and_query_it_came_from(alice: Caller, bob: Caller) -> None:
    for n in range(3):
        await alice.create_task(title=f"Task {n}")
    cursor = next_cursor(await alice.request("GET", "/tasks", params={"limit": 1}))
    assert cursor is not None
    problem(await alice.request("GET", "/tasks", params={"limit": 1, "cursor": cursor, "sort": "-title"}), 400)
    problem(await alice.request("GET", "/tasks", params={"limit": 1, "cursor": cursor, "status": "pending"}), 400)
    problem(await bob.request("GET", "/tasks", params={"limit": 1, "cursor": cursor}), 400)
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    problem(await alice.request("GET", "/tasks", params={"limit": 1, "cursor": tampered}), 400)
    assert (await alice.request("GET", "/tasks", params={"limit": 1, "cursor": cursor})).status_code == 200


async def test_list_filters_and_search(alice: Caller) -> None:
    work = (await alice.request("POST", "/categories", json={"name": "Work"})).json()
    report = await alice.create_task(
        title="Quarterly report",
        priority="high",
        tags=["Work", "Q3"],
        category_id=work["id"],
        due_at="2026-09-30T17:00:00Z",
    )
    milk = await alice.create_task(title="Buy milk", description="semi-skimmed", priority="low", tags=["home"])
    done = await alice.create_task(title="Old report", completed=True)

    async def titles(**params: object) -> list[str]:
        response = await alice.request("GET", "/tasks", params=params)
        assert response.status_code == 200, response.text
        return [task["title"] for task in response.json()]

    assert await titles(status="pending") == [report["title"], milk["title"]]
    assert await titles(status="completed") == [done["title"]]
    assert await titles(priority=["high", "low"]) == [report["title"], milk["title"]]
    assert await titles(tag=["work", "q3"]) == [report["title"]]
    assert await titles(tag=["work", "home"]) == []
    assert await titles(category_id=work["id"]) == [report["title"]]
    assert await titles(q="REPORT") == [report["title"], done["title"]]
    assert await titles(q="skimmed") == [milk["title"]]
    assert await titles(due_before="2026-10-01T00:00:00Z") == [report["title"]]
    assert await titles(due_after="2026-10-01T00:00:00+00:00") == []
    assert await titles(sort="-priority") == [report["title"], milk["title"], done["title"]]
    assert await titles(sort="due_at", status="pending") == [report["title"], milk["title"]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"sort": "colour"},
        {"status": "maybe"},
        {"priority": "urgent"},
        {"due_before": "tomorrow"},
        {"due_before": "2026-01-01T00:00:00"},
        {"category_id": "not-a-uuid"},
        {"q": "a\x00b"},
    ],
)
async def test_bad_list_parameters_are_422(alice: Caller, params: dict[str, object]) -> None:
    problem(await alice.request("GET", "/tasks", params=params), 422)


async def test_tags_list_counts_tasks_per_tag(alice: Caller) -> None:
    await alice.create_task(tags=["work", "urgent"])
    await alice.create_task(tags=["Work"])
    body = (await alice.request("GET", "/tags")).json()
    assert body == [{"tag": "Work", "count": 2}, {"tag": "urgent", "count": 1}]


async def test_reminders_lists_open_tasks_whose_reminder_is_due(alice: Caller) -> None:
    now = datetime.now(UTC)
    due = await alice.create_task(title="due", remind_at=(now - timedelta(minutes=5)).isoformat())
    await alice.create_task(title="later", remind_at=(now + timedelta(days=1)).isoformat())
    await alice.create_task(title="done", remind_at=(now - timedelta(minutes=5)).isoformat(), completed=True)
    body = (await alice.request("GET", "/reminders")).json()
    assert [task["id"] for task in body] == [due["id"]]
    until = (now + timedelta(days=2)).isoformat()
    body = (await alice.request("GET", "/reminders", params={"until": until})).json()
    assert [task["title"] for task in body] == ["due", "later"]
    problem(await alice.request("GET", "/reminders", params={"until": "2026-01-01T00:00:00"}), 422)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"title"}),
        ({"title": "   "}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"title": "ok", "description": "x" * 10_001}, {"description"}),
        ({"title": "nul\x00"}, {"title"}),
        ({"title": "surrogate \ud800"}, {"title"}),
        ({"title": 5}, {"title"}),
        ({"title": "ok", "priority": "urgent"}, {"priority"}),
        ({"title": "ok", "due_at": "2026-01-01T09:00:00"}, {"due_at"}),
        ({"title": "ok", "remind_at": "not a date"}, {"remind_at"}),
        ({"title": "ok", "recurrence": "FREQ=DAILY"}, {"recurrence"}),
        ({"title": "ok", "recurrence": "FREQ=HOURLY", "due_at": "2026-01-01T09:00:00Z"}, {"recurrence"}),
        ({"title": "ok", "tags": ["x" * 51]}, {"tags[0]"}),
        ({"title": "ok", "tags": [f"t{n}" for n in range(21)]}, {"tags"}),
        ({"title": "ok", "category_id": "00000000-0000-7000-8000-000000000000"}, {"category_id"}),
        ({"title": "", "description": "x" * 10_001}, {"title", "description"}),
    ],
)
async def test_invalid_task_is_422_naming_the_fields(alice: Caller, body: dict[str, object], fields: set[str]) -> None:
    content = json.dumps(body).encode()  # ASCII escapes, so a lone surrogate reaches the server
    response = await alice.request("POST", "/tasks", content=content, headers={"Content-Type": "application/json"})
    assert field_errors(response) == fields
    assert (await alice.request("GET", "/tasks")).json() == []


async def test_malformed_json_is_400(alice: Caller) -> None:
    response = await alice.request(
        "POST", "/tasks", content=b'{"title": ', headers={"Content-Type": "application/json"}
    )
    problem(response, 400)


async def test_unknown_task_id_and_non_uuid_id(alice: Caller) -> None:
    problem(await alice.request("GET", "/tasks/00000000-0000-7000-8000-000000000000"), 404)
    problem(await alice.request("GET", "/tasks/not-a-uuid"), 422)


async def test_body_over_the_limit_is_413(alice: Caller) -> None:
    response = await alice.request("POST", "/tasks", json={"title": "big", "description": "x" * 2_000_000})
    problem(response, 413)


async def test_streamed_body_over_the_limit_is_413(alice: Caller) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size shows only while reading
        yield b'{"title": "big", "description": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    response = await alice.request("POST", "/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    problem(response, 413)
    assert (await alice.request("GET", "/tasks")).json() == []


async def test_every_task_the_api_shows_names_its_owner(alice: Caller) -> None:
    # Front ends build URLs from `task.user_id`: every shape of a task carries it.
    created = await alice.create_task(title="Owned", remind_at="2020-01-01T00:00:00Z")
    url = f"/tasks/{created['id']}"
    batch = await alice.request("POST", "/batch", json={"operations": [{"op": "create", "body": {"title": "B"}}]})
    shown = [
        created,
        (await alice.request("GET", url)).json(),
        (await alice.request("PUT", url, json={"title": "Owned", "remind_at": "2020-01-01T00:00:00Z"})).json(),
        (await alice.request("PATCH", url, json={"description": "d"})).json(),
        (await alice.request("POST", f"{url}/move", json={"after": None})).json(),
        *(await alice.request("GET", "/tasks")).json(),
        *(await alice.request("GET", "/reminders")).json(),
        *(await alice.request("GET", "/changes")).json()["tasks"],
        *(result["body"] for result in batch.json()["results"]),
        (await alice.request("PATCH", f"{url}/complete")).json(),
    ]
    assert len(shown) == 12  # the list and the snapshot hold both tasks
    assert [task["user_id"] for task in shown] == [alice.id] * len(shown)


def test_a_next_page_link_escapes_what_a_client_left_raw_and_keeps_its_escapes() -> None:
    # Sent raw (as curl does): `<`, `>`, a space and UTF-8 in the query; escapes as they came.
    scope = {
        "type": "http",
        "path": "/api/u/tasks",
        "query_string": "q=<b> ü&tag=a%2Cb&%63ursor=old&limit=2".encode(),
        "headers": [(b"host", b"tasks.example")],
    }
    header = next_page_link(Request(scope), settings_for("sqlite://"), "/api/u/tasks", "next.page")

    (link,) = httpx.Response(200, headers={"Link": header}).links.values()
    assert link["rel"] == "next"
    assert link["url"] == "http://tasks.example/api/u/tasks?q=%3Cb%3E%20%C3%BC&tag=a%2Cb&limit=2&cursor=next.page"
    assert httpx.URL(link["url"]).params.multi_items() == [
        ("q", "<b> ü"), ("tag", "a,b"), ("limit", "2"), ("cursor", "next.page")
    ]  # fmt: skip
