"""Subtasks, manual order and all-day dates over HTTP, as a new user of a front end meets them."""

from __future__ import annotations

from typing import Any

from tests.api.assertions import field_errors, next_cursor, problem
from tests.conftest import Caller


async def steps_of(caller: Caller, parent: dict[str, Any] | None, **params: Any) -> list[dict[str, Any]]:
    """A parent's steps (None: the top-level tasks) in the user's order, every page."""
    query: dict[str, Any] = {"sort": "position", "limit": 2, **params}
    query.update({"parent_id": parent["id"]} if parent else {"top_level": "true"})
    items: list[dict[str, Any]] = []
    for _ in range(50):
        page = await caller.request("GET", "/tasks", params=query)
        assert page.status_code == 200, page.text
        items += page.json()
        cursor = next_cursor(page)
        if cursor is None:
            return items
        query["cursor"] = cursor
    raise AssertionError("paging did not end")


def titles(tasks: list[dict[str, Any]]) -> list[str]:
    return [task["title"] for task in tasks]


async def move(caller: Caller, task: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await caller.request("POST", f"/tasks/{task['id']}/move", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    moved: dict[str, Any] = response.json()
    return moved


async def test_a_new_user_breaks_a_task_into_steps_reorders_them_and_completes_it(alice: Caller) -> None:
    party = await alice.create_task(title="Plan the party")
    invite = await alice.create_task(title="Invite friends", parent_id=party["id"])
    food = await alice.create_task(title="Food", parent_id=party["id"])
    cake = await alice.create_task(title="Bake a cake", parent_id=food["id"])
    await alice.create_task(title="Buy drinks", parent_id=food["id"])
    assert titles(await steps_of(alice, party)) == ["Invite friends", "Food"]

    await move(alice, food, after=None)  # first
    assert titles(await steps_of(alice, party)) == ["Food", "Invite friends"]
    moved = await move(alice, cake, after=(await steps_of(alice, food))[1]["id"])  # after "Buy drinks"
    assert moved["parent_id"] == food["id"]
    assert titles(await steps_of(alice, food)) == ["Buy drinks", "Bake a cake"]

    done = await alice.request("PATCH", f"/tasks/{party['id']}/complete", json={"completed": True})
    assert done.status_code == 200
    every = (await alice.request("GET", "/tasks", params={"status": "pending"})).json()
    assert every == []  # the steps and their steps are done too
    assert (await alice.request("GET", f"/tasks/{invite['id']}")).json()["completed"] is True


async def test_a_weekly_review_with_a_checklist_comes_back_open_with_its_steps(alice: Caller) -> None:
    review = await alice.create_task(title="Weekly review", due_date="2026-12-04", recurrence="FREQ=WEEKLY")
    for step in ("Empty the inbox", "Look at the calendar", "Pick three goals"):
        await alice.create_task(title=step, parent_id=review["id"])
    done = (await alice.request("PATCH", f"/tasks/{review['id']}/complete", json={"completed": True})).json()
    following = (await alice.request("GET", f"/tasks/{done['next_occurrence_id']}")).json()
    assert (following["due_date"], following["due_at"], following["completed"]) == ("2026-12-11", None, False)
    steps = await steps_of(alice, following)
    assert titles(steps) == ["Empty the inbox", "Look at the calendar", "Pick three goals"]
    assert not any(step["completed"] for step in steps)
    assert all(step["completed"] for step in await steps_of(alice, review))


async def test_a_task_due_friday_without_a_time(alice: Caller) -> None:
    friday = await alice.create_task(title="Send the report", due_date="2026-12-04", time_zone="Europe/Berlin")
    assert (friday["due_date"], friday["due_at"]) == ("2026-12-04", None)
    # Due at the start of Friday in Berlin: 23:00 UTC on Thursday.
    due = await alice.request("GET", "/tasks", params={"due_before": "2026-12-03T23:00:01Z"})
    assert [task["id"] for task in due.json()] == [friday["id"]]
    not_yet = await alice.request("GET", "/tasks", params={"due_before": "2026-12-03T23:00:00Z"})
    assert not_yet.json() == []
    both = await alice.request(
        "POST", "/tasks", json={"title": "x", "due_date": "2026-12-04", "due_at": "2026-12-04T09:00:00Z"}
    )
    assert field_errors(both) == {"due_date"}
    for bad in ("2026-02-30", "Friday", "2026-12-04T00:00:00Z"):
        assert "due_date" in str(
            problem(await alice.request("POST", "/tasks", json={"title": "x", "due_date": bad}), 422)
        )
    patched = await alice.request(
        "PATCH", f"/tasks/{friday['id']}", json={"due_date": None, "due_at": "2026-12-04T08:00:00Z"}
    )
    assert (patched.json()["due_date"], patched.json()["due_at"]) == (None, "2026-12-04T08:00:00+00:00")


async def test_a_parent_that_is_not_yours_reads_as_one_that_does_not_exist(alice: Caller, bob: Caller) -> None:
    bobs = await bob.create_task(title="Bob's")
    mine = await alice.create_task(title="Mine")
    answers = []
    for parent_id in (bobs["id"], "00000000-0000-7000-8000-000000000000"):
        created = await alice.request("POST", "/tasks", json={"title": "Step", "parent_id": parent_id})
        patched = await alice.request("PATCH", f"/tasks/{mine['id']}", json={"parent_id": parent_id})
        moved = await alice.request("POST", f"/tasks/{mine['id']}/move", json={"parent_id": parent_id})
        answers.append([problem(response, 422) for response in (created, patched, moved)])
    assert answers[0] == answers[1]
    assert answers[0][0]["errors"] == [{"field": "parent_id", "message": "is not one of your tasks"}]
    assert (await bob.request("GET", "/tasks")).json() == [bobs]  # untouched


async def test_a_move_honours_if_match_and_names_a_bad_after(alice: Caller, bob: Caller) -> None:
    first, second = await alice.create_task(title="First"), await alice.create_task(title="Second")
    stale = await alice.request(
        "POST", f"/tasks/{second['id']}/move", json={"after": None}, headers={"If-Match": '"7"'}
    )
    problem(stale, 412)
    moved = await alice.request(
        "POST", f"/tasks/{second['id']}/move", json={"after": None}, headers={"If-Match": f'"{second["version"]}"'}
    )
    assert moved.status_code == 200
    assert titles(await steps_of(alice, None)) == ["Second", "First"]
    assert field_errors(await alice.request("POST", f"/tasks/{first['id']}/move", json={"after": first["id"]})) == {
        "after"
    }
    step = await alice.create_task(title="Step", parent_id=first["id"])
    # `after` must be under the parent the task moves to (here: it keeps its own, the top level).
    assert field_errors(await alice.request("POST", f"/tasks/{second['id']}/move", json={"after": step["id"]})) == {
        "after"
    }
    assert field_errors(await alice.request("POST", f"/tasks/{second['id']}/move", json={"sideways": 1})) == {
        "sideways"
    }
    foreign = await bob.client.post(alice.url(f"/tasks/{first['id']}/move"), headers=bob.headers, json={})
    problem(foreign, 403)
    problem(await bob.request("POST", f"/tasks/{first['id']}/move", json={}), 404)


async def test_list_filters_for_structure_are_checked(alice: Caller) -> None:
    top = await alice.create_task(title="Top")
    step = await alice.create_task(title="Step", parent_id=top["id"])
    steps = await alice.request("GET", "/tasks", params={"top_level": "false"})
    assert [task["id"] for task in steps.json()] == [step["id"]]
    both = await alice.request("GET", "/tasks", params={"top_level": "true", "parent_id": top["id"]})
    assert field_errors(both) == {"top_level"}
    assert field_errors(await alice.request("GET", "/tasks", params={"parent_id": "nope"})) == {"parent_id"}
    # A cursor from one list does not page another.
    cursor = next_cursor(await alice.request("GET", "/tasks", params={"limit": 1, "sort": "position"}))
    other = await alice.request(
        "GET", "/tasks", params={"limit": 1, "sort": "position", "top_level": "true", "cursor": cursor}
    )
    problem(other, 400)


async def test_deleting_a_task_deletes_its_steps(alice: Caller) -> None:
    top = await alice.create_task(title="Top")
    step = await alice.create_task(title="Step", parent_id=top["id"])
    await alice.create_task(title="Sub-step", parent_id=step["id"])
    kept = await alice.create_task(title="Kept")
    assert (await alice.request("DELETE", f"/tasks/{top['id']}")).status_code == 204
    assert (await alice.request("GET", "/tasks")).json() == [kept]
    problem(await alice.request("GET", f"/tasks/{step['id']}"), 404)
