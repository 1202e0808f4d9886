"""Time zones over HTTP: the user's setting, each task's zone, and repeats on the local clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.assertions import field_errors, problem
from tests.conftest import Caller

BERLIN = "Europe/Berlin"


async def settings_of(caller: Caller) -> dict[str, Any]:
    response = await caller.request("GET", "/settings")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def save_zone(caller: Caller, time_zone: str) -> None:
    response = await caller.request("PUT", "/settings", json={"time_zone": time_zone})
    assert response.status_code == 200, response.text
    assert response.json() == {"time_zone": time_zone}


async def complete(caller: Caller, task: dict[str, Any]) -> dict[str, Any]:
    done = (await caller.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": True})).json()
    following: dict[str, Any] = (await caller.request("GET", f"/tasks/{done['next_occurrence_id']}")).json()
    return following


async def test_a_new_users_settings_are_utc_until_saved(alice: Caller, bob: Caller) -> None:
    assert await settings_of(alice) == {"time_zone": "UTC"}
    await save_zone(alice, BERLIN)
    assert await settings_of(alice) == {"time_zone": BERLIN}
    await save_zone(alice, "Asia/Tokyo")  # PUT replaces
    assert await settings_of(alice) == {"time_zone": "Asia/Tokyo"}
    assert await settings_of(bob) == {"time_zone": "UTC"}


async def test_another_users_settings_are_forbidden(alice: Caller, bob: Caller) -> None:
    response = await bob.client.put(alice.url("/settings"), headers=bob.headers, json={"time_zone": BERLIN})
    problem(response, 403)
    problem(await bob.client.get(alice.url("/settings"), headers=bob.headers), 403)
    assert await settings_of(alice) == {"time_zone": "UTC"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"time_zone": "Europe/Atlantis"}, {"time_zone"}),
        ({"time_zone": "europe/berlin"}, {"time_zone"}),
        ({"time_zone": None}, {"time_zone"}),
        ({}, {"time_zone"}),
        ({"time_zone": BERLIN, "locale": "de"}, {"locale"}),
    ],
)
async def test_invalid_settings_are_422_naming_the_field_and_change_nothing(
    alice: Caller, body: dict[str, object], fields: set[str]
) -> None:
    assert field_errors(await alice.request("PUT", "/settings", json=body)) == fields
    assert await settings_of(alice) == {"time_zone": "UTC"}


async def test_a_task_takes_the_users_zone_unless_it_names_one(alice: Caller) -> None:
    assert (await alice.create_task())["time_zone"] == "UTC"
    await save_zone(alice, BERLIN)
    assert (await alice.create_task())["time_zone"] == BERLIN
    assert (await alice.create_task(time_zone="America/New_York"))["time_zone"] == "America/New_York"


async def test_an_unknown_zone_on_a_task_is_422_naming_the_field(alice: Caller) -> None:
    response = await alice.request("POST", "/tasks", json={"title": "t", "time_zone": "Mars/Olympus"})
    assert field_errors(response) == {"time_zone"}
    task = await alice.create_task()
    response = await alice.request("PATCH", f"/tasks/{task['id']}", json={"time_zone": "UTC+2"})
    assert field_errors(response) == {"time_zone"}
    response = await alice.request("PUT", f"/tasks/{task['id']}", json={"title": "t", "time_zone": 2})
    assert field_errors(response) == {"time_zone"}


async def test_a_null_zone_in_a_patch_and_an_absent_one_in_a_put_are_the_users_setting(alice: Caller) -> None:
    task = await alice.create_task(time_zone="Asia/Tokyo")
    await save_zone(alice, BERLIN)
    renamed = (await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "renamed"})).json()
    assert renamed["time_zone"] == "Asia/Tokyo"  # a saved setting does not move existing tasks
    cleared = (await alice.request("PATCH", f"/tasks/{task['id']}", json={"time_zone": None})).json()
    assert cleared["time_zone"] == BERLIN
    await alice.request("PATCH", f"/tasks/{task['id']}", json={"time_zone": "Asia/Tokyo"})
    replaced = (await alice.request("PUT", f"/tasks/{task['id']}", json={"title": "t"})).json()
    assert replaced["time_zone"] == BERLIN


async def test_a_daily_0900_berlin_task_stays_at_0900_local_across_both_changes_of_2026(alice: Caller) -> None:
    await save_zone(alice, BERLIN)
    spring = await alice.create_task(
        title="Stand-up", due_at="2026-03-28T08:00:00Z", remind_at="2026-03-28T07:45:00Z", recurrence="FREQ=DAILY"
    )
    following = await complete(alice, spring)
    assert (following["due_at"], following["remind_at"]) == ("2026-03-29T07:00:00+00:00", "2026-03-29T06:45:00+00:00")
    assert following["time_zone"] == BERLIN

    autumn = await alice.create_task(title="Stand-up", due_at="2026-10-24T07:00:00Z", recurrence="FREQ=DAILY")
    assert (await complete(alice, autumn))["due_at"] == "2026-10-25T08:00:00+00:00"


async def test_byday_means_the_local_day(alice: Caller) -> None:
    # Monday 00:30 in Berlin is Sunday 23:30 in UTC.
    task = await alice.create_task(due_at="2026-03-01T23:30:00Z", recurrence="FREQ=WEEKLY;BYDAY=MO", time_zone=BERLIN)
    assert (await complete(alice, task))["due_at"] == "2026-03-08T23:30:00+00:00"
    in_utc = await alice.create_task(due_at="2026-03-01T23:30:00Z", recurrence="FREQ=WEEKLY;BYDAY=MO", time_zone="UTC")
    assert (await complete(alice, in_utc))["due_at"] == "2026-03-02T23:30:00+00:00"


async def test_a_local_time_the_clocks_skip_moves_forward(alice: Caller) -> None:
    task = await alice.create_task(due_at="2026-03-28T01:30:00Z", recurrence="FREQ=DAILY", time_zone=BERLIN)
    # 02:30 on 29 March does not exist in Berlin: it is 03:30 summer time, 01:30 UTC.
    assert (await complete(alice, task))["due_at"] == "2026-03-29T01:30:00+00:00"


async def test_the_zone_is_in_lists_and_in_the_sync_feed_and_a_setting_is_no_change(alice: Caller) -> None:
    task = await alice.create_task(time_zone=BERLIN)
    listed = (await alice.request("GET", "/tasks")).json()
    assert [item["time_zone"] for item in listed] == [BERLIN]
    snapshot = (await alice.request("GET", "/changes")).json()
    assert [(item["id"], item["time_zone"]) for item in snapshot["tasks"]] == [(task["id"], BERLIN)]
    await save_zone(alice, "Asia/Tokyo")
    delta = (await alice.request("GET", "/changes", params={"since": snapshot["next_since"]})).json()
    assert (delta["tasks"], delta["categories"], delta["has_more"]) == ([], [], False)
