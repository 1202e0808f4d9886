"""Sync over HTTP: `/changes` (snapshot, delta, paging, expiry) and `Idempotency-Key` retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from fastapi import FastAPI

from tests.api.assertions import field_errors, problem
from tests.conftest import Caller, settings_for
from tests.domain.conftest import FixedClock
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.container import Container
from todo_core.use_cases.sync import purge_expired


async def changes(caller: Caller, since: str | None = None, **params: Any) -> dict[str, Any]:
    if since is not None:
        params["since"] = since
    response = await caller.request("GET", "/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_client_syncs_a_snapshot_then_what_changed(alice: Caller, bob: Caller) -> None:
    first = await alice.create_task(title="First")
    second = await alice.create_task(title="Second")
    await bob.create_task(title="Bob's")
    snapshot = await changes(alice)
    assert [task["title"] for task in snapshot["tasks"]] == ["First", "Second"]
    assert snapshot["deleted"] == {"tasks": [], "categories": []} and snapshot["has_more"] is False

    category = (await alice.request("POST", "/categories", json={"name": "Work"})).json()
    await alice.request("PATCH", f"/tasks/{first['id']}", json={"title": "First, renamed"})
    await alice.request("DELETE", f"/tasks/{second['id']}")
    delta = await changes(alice, snapshot["next_since"])

    assert [(task["id"], task["title"]) for task in delta["tasks"]] == [(first["id"], "First, renamed")]
    assert [c["id"] for c in delta["categories"]] == [category["id"]]
    assert delta["deleted"] == {"tasks": [second["id"]], "categories": []}
    assert delta["tasks"][0] == (await alice.request("GET", f"/tasks/{first['id']}")).json()

    up_to_date = await changes(alice, delta["next_since"])
    assert (up_to_date["tasks"], up_to_date["next_since"]) == ([], delta["next_since"])


async def test_changes_come_in_pages(alice: Caller) -> None:
    created = [(await alice.create_task(title=f"Task {n}"))["id"] for n in range(5)]
    seen: list[str] = []
    since = None
    for _ in range(5):
        page = await changes(alice, since, limit=2)
        seen += [task["id"] for task in page["tasks"]]
        since = page["next_since"]
        if not page["has_more"]:
            break
    assert seen == created


async def test_a_mangled_or_borrowed_sync_token_is_400(alice: Caller, bob: Caller) -> None:
    await alice.create_task()
    token = (await changes(alice))["next_since"]
    payload, mac = token.split(".")
    for mangled in (f"{payload}x.{mac}", f"{payload}.{mac[:-2]}AA", "garbage", ""):
        body = problem(await alice.request("GET", "/changes", params={"since": mangled}), 400)
        assert body["type"] == "/problems/invalid-sync-token"
    problem(await bob.request("GET", "/changes", params={"since": token}), 400)  # alice's, not bob's


async def test_a_limit_out_of_range_is_422(alice: Caller) -> None:
    for limit in (0, 1001):
        assert field_errors(await alice.request("GET", "/changes", params={"limit": limit})) == {"limit"}


async def test_a_token_from_before_purged_deletions_is_410(app: FastAPI, alice: Caller) -> None:
    token = (await changes(alice))["next_since"]
    task = await alice.create_task()
    await alice.request("DELETE", f"/tasks/{task['id']}")
    container: Container = app.state.container
    month_later = FixedClock(datetime.now(UTC) + timedelta(days=31))
    await purge_expired(container.retention(), month_later, tombstones=timedelta(days=30), keys=timedelta(hours=24))

    body = problem(await alice.request("GET", "/changes", params={"since": token}), 410)
    assert body["type"] == "/problems/sync-expired"
    assert "snapshot" in str(body["detail"])
    assert (await changes(alice))["tasks"] == []  # a snapshot still works


# Idempotency-Key


async def post_task(caller: Caller, key: str, **fields: Any) -> httpx.Response:
    body = {"title": "Buy milk", **fields}
    return await caller.request("POST", "/tasks", json=body, headers={"Idempotency-Key": key})


async def test_a_retry_with_the_same_key_gets_the_first_answer_and_creates_nothing(alice: Caller) -> None:
    first = await post_task(alice, "retry-1")
    again = await post_task(alice, "retry-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    for header in ("location", "etag", "content-type"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    listed = (await alice.request("GET", "/tasks")).json()
    assert [task["id"] for task in listed] == [first.json()["id"]]


async def test_the_same_key_with_another_body_is_422(alice: Caller) -> None:
    await post_task(alice, "key")
    body = problem(await post_task(alice, "key", title="Buy bread"), 422)
    assert body["type"] == "/problems/idempotency-key-reused"
    assert len((await alice.request("GET", "/tasks")).json()) == 1


async def test_keys_are_per_user_and_per_route(alice: Caller, bob: Caller) -> None:
    await post_task(alice, "shared")
    assert (await post_task(bob, "shared")).status_code == 201
    category = await alice.request("POST", "/categories", json={"name": "Work"}, headers={"Idempotency-Key": "shared"})
    problem(category, 422)  # the same key on another route is another request


async def test_a_request_that_failed_leaves_its_key_unused(alice: Caller) -> None:
    problem(await post_task(alice, "k", category_id="00000000-0000-0000-0000-000000000001"), 422)
    assert (await post_task(alice, "k")).status_code == 201


async def test_a_key_must_be_1_to_255_characters(alice: Caller) -> None:
    for key in ("", "k" * 256):
        problem(await post_task(alice, key), 422)
    assert (await post_task(alice, "k" * 255)).status_code == 201


async def test_category_creation_honours_the_key(alice: Caller) -> None:
    headers = {"Idempotency-Key": "cat"}
    first = await alice.request("POST", "/categories", json={"name": "Home"}, headers=headers)
    again = await alice.request("POST", "/categories", json={"name": "Home"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)  # not a 409 duplicate name
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]


async def test_concurrent_retries_of_one_key_create_exactly_one_task(alice: Caller) -> None:
    responses = await asyncio.gather(*(post_task(alice, "burst") for _ in range(6)))

    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    assert sum(response.headers.get("idempotent-replayed") == "true" for response in responses) == 5
    assert len((await alice.request("GET", "/tasks")).json()) == 1


@pytest.fixture
def own_sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file of the test's own (an app that runs its lifespan closes its engine)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
    migrate(url)
    return url


async def test_the_service_purges_expired_tombstones_by_itself(own_sqlite_url: str) -> None:
    container = Container(settings=settings_for(own_sqlite_url, purge_interval_seconds=0.05))
    clock = FixedClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    app = create_app(container=container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        alice = Caller(http, "alice")
        token = (await changes(alice))["next_since"]
        task = await alice.create_task()
        await alice.request("DELETE", f"/tasks/{task['id']}")
        clock.advance(timedelta(days=31))
        for _ in range(100):  # the first purge runs after one interval
            response = await alice.request("GET", "/changes", params={"since": token})
            if response.status_code == 410:
                break
            await asyncio.sleep(0.05)
        problem(response, 410)


async def test_the_service_leaves_the_purge_to_todo_maintain_when_told(own_sqlite_url: str) -> None:
    container = Container(settings=settings_for(own_sqlite_url, purge_interval_seconds=0.05, maintain_in_server=False))
    clock = FixedClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    app = create_app(container=container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        alice = Caller(http, "alice")
        token = (await changes(alice))["next_since"]
        task = await alice.create_task()
        await alice.request("DELETE", f"/tasks/{task['id']}")
        clock.advance(timedelta(days=31))
        await asyncio.sleep(20 * 0.05)  # twenty intervals
        response = await alice.request("GET", "/changes", params={"since": token})
        assert response.status_code == 200, response.text
        assert response.json()["deleted"]["tasks"] == [task["id"]]
