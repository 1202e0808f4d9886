"""Erasing an account over HTTP (`DELETE /api/{user_id}?confirm=`), checked table by table on
the migrated schema of SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.assertions import field_errors, problem
from tests.conftest import SQL_BACKENDS, Caller, SqlStore, api_client

#: Tables with a `user_id` that keep a row of an erased user, and why.
KEPT_AFTER_ERASURE = {
    # The user's change counter, moved past every sync token issued before the erasure (so that
    # one is 410, never a silently wrong answer). It holds the id, two numbers, the mark of an
    # import being written in slices on SQLite (a lock file's name, or null) and the user's task
    # count (0 after the erasure), nothing else.
    "user_changes": {"user_id", "seq", "horizon", "importing", "tasks"},
}


async def give_everything(caller: Caller) -> dict[str, Any]:
    """Make the user a row in every table the API writes: a category, a tagged task, a deleted
    task (tombstone), a reminder to come, settings, a calendar feed, a webhook and its deliveries,
    an idempotency key, and sync state."""
    webhook = await caller.request("POST", "/webhooks", json={"url": "https://93.184.215.14/hook"})
    assert webhook.status_code == 201, webhook.text
    category = (await caller.request("POST", "/categories", json={"name": "Home"})).json()
    await caller.create_task(
        title="Kept",
        tags=["a", "b"],
        category_id=category["id"],
        due_at="2099-01-02T09:00:00Z",
        remind_at="2099-01-02T08:00:00Z",
    )
    gone = await caller.create_task(title="Gone")
    assert (await caller.request("DELETE", f"/tasks/{gone['id']}")).status_code == 204
    assert (await caller.request("PUT", "/settings", json={"time_zone": "Asia/Tokyo"})).status_code == 200
    keyed = await caller.request("POST", "/tasks", json={"title": "Keyed"}, headers={"Idempotency-Key": "k1"})
    assert keyed.status_code == 201
    feed = (await caller.request("POST", "/calendar-feeds")).json()
    token = (await caller.request("GET", "/changes")).json()["next_since"]
    return {"feed": urlsplit(feed["url"]).path, "since": token}


async def rows_per_table(engine: AsyncEngine, user_id: str) -> dict[str, int]:
    """How many rows each table with a `user_id` column holds for the user, as the migrated
    database has them (not as the code declares them)."""
    async with engine.connect() as connection:
        tables = await connection.run_sync(
            lambda sync: [
                name
                for name in inspect(sync).get_table_names()
                if "user_id" in {column["name"] for column in inspect(sync).get_columns(name)}
            ]
        )
        counts = {}
        for name in tables:
            statement = text(f'SELECT count(*) FROM "{name}" WHERE user_id = :user_id')
            counts[name] = (await connection.execute(statement, {"user_id": user_id})).scalar_one()
    return counts


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest) -> SqlStore:
    """A migrated database of the session, with the engine that reads its tables directly."""
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


async def test_erasing_an_account_empties_every_table_of_it_and_touches_no_other_user(
    store: SqlStore, new_user: Callable[[], str]
) -> None:
    async with api_client(store) as http:
        alice, bob = Caller(http, new_user()), Caller(http, new_user())
        await give_everything(alice)
        await give_everything(bob)
        before_alice = await rows_per_table(store.engine, alice.id)
        before_bob = await rows_per_table(store.engine, bob.id)
        # The seeding reached every table but those the allow-list keeps: else the test proves nothing.
        assert {name for name, count in before_alice.items() if count == 0} == set(), before_alice

        assert (await alice.request("DELETE", "", params={"confirm": alice.id})).status_code == 204

        after = await rows_per_table(store.engine, alice.id)
        assert {name: count for name, count in after.items() if name not in KEPT_AFTER_ERASURE} == dict.fromkeys(
            set(after) - set(KEPT_AFTER_ERASURE), 0
        )
        assert await rows_per_table(store.engine, bob.id) == before_bob
        async with store.engine.connect() as connection:
            for name, columns in KEPT_AFTER_ERASURE.items():
                kept = await connection.run_sync(lambda sync, table=name: inspect(sync).get_columns(table))
                assert {column["name"] for column in kept} == columns, f"{name} holds more than the allow-list says"
        assert before_alice.keys() == after.keys()


async def test_after_erasure_the_lists_are_empty_feeds_404_and_old_sync_tokens_410(
    alice: Caller, bob: Caller, client: httpx.AsyncClient
) -> None:
    held = await give_everything(alice)
    bobs = await give_everything(bob)

    assert (await alice.request("DELETE", "", params={"confirm": alice.id})).status_code == 204

    for path in ("/tasks", "/categories", "/calendar-feeds", "/webhooks"):
        assert (await alice.request("GET", path)).json() == [], path
    assert (await alice.request("GET", "/tags")).json() == []
    assert (await alice.request("GET", "/settings")).json() == {"time_zone": "UTC"}
    problem(await client.get(held["feed"]), 404)
    problem(await alice.request("GET", "/changes", params={"since": held["since"]}), 410)
    snapshot = (await alice.request("GET", "/changes")).json()
    assert (snapshot["tasks"], snapshot["categories"]) == ([], [])
    await alice.create_task(title="A fresh start")
    assert [
        t["title"]
        for t in (await alice.request("GET", "/changes", params={"since": snapshot["next_since"]})).json()["tasks"]
    ] == ["A fresh start"]
    problem(await alice.request("GET", "/changes", params={"since": held["since"]}), 410)
    # An idempotency key of before is free again: the same key and body create anew.
    keyed = await alice.request("POST", "/tasks", json={"title": "Keyed"}, headers={"Idempotency-Key": "k1"})
    assert keyed.status_code == 201 and "idempotent-replayed" not in keyed.headers

    assert len((await bob.request("GET", "/tasks")).json()) == 2
    assert (await client.get(bobs["feed"])).status_code == 200
    assert (await bob.request("GET", "/changes", params={"since": bobs["since"]})).status_code == 200


async def test_an_account_is_erased_only_with_its_own_id_as_confirmation(alice: Caller, bob: Caller) -> None:
    await alice.create_task(title="Kept")
    assert field_errors(await alice.request("DELETE", "")) == {"confirm"}
    for confirm in ("", alice.id.upper(), bob.id, f"{alice.id} "):
        assert field_errors(await alice.request("DELETE", "", params={"confirm": confirm})) == {"confirm"}, confirm
    erase_alice = {"url": f"/api/{alice.id}", "params": {"confirm": alice.id}}
    problem(await alice.client.delete(**erase_alice, headers=bob.headers), 403)
    problem(await alice.client.delete(**erase_alice), 401)
    assert len((await alice.request("GET", "/tasks")).json()) == 1
