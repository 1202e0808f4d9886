"""The category routes over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.assertions import field_errors, problem
from tests.conftest import Caller


async def test_category_lifecycle(alice: Caller) -> None:
    created = await alice.request("POST", "/categories", json={"name": " Work ", "color": "#1E90FF"})
    assert created.status_code == 201
    category = created.json()
    assert (category["name"], category["color"], category["version"]) == ("Work", "#1e90ff", 1)
    assert created.headers["location"] == alice.url(f"/categories/{category['id']}")

    assert (await alice.request("GET", f"/categories/{category['id']}")).json() == category
    renamed = await alice.request("PATCH", f"/categories/{category['id']}", json={"name": "Office", "color": None})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["color"], renamed.json()["version"]) == ("Office", None, 2)
    stale = await alice.request(
        "PATCH", f"/categories/{category['id']}", json={"name": "X"}, headers={"If-Match": '"1"'}
    )
    problem(stale, 412)

    listed = (await alice.request("GET", "/categories")).json()
    assert [item["name"] for item in listed] == ["Office"]
    assert (await alice.request("DELETE", f"/categories/{category['id']}")).status_code == 204
    problem(await alice.request("GET", f"/categories/{category['id']}"), 404)


async def test_categories_are_listed_by_name_ignoring_case(alice: Caller) -> None:
    for name in ["beta", "Alpha", "gamma"]:
        await alice.request("POST", "/categories", json={"name": name})
    listed = (await alice.request("GET", "/categories")).json()
    assert [item["name"] for item in listed] == ["Alpha", "beta", "gamma"]


async def test_duplicate_name_in_any_case_is_409(alice: Caller, bob: Caller) -> None:
    await alice.request("POST", "/categories", json={"name": "Work"})
    problem(await alice.request("POST", "/categories", json={"name": "WORK"}), 409)
    other = (await alice.request("POST", "/categories", json={"name": "Home"})).json()
    problem(await alice.request("PATCH", f"/categories/{other['id']}", json={"name": "work"}), 409)
    # Names are unique per user only.
    assert (await bob.request("POST", "/categories", json={"name": "work"})).status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 51}, {"name"}),
        ({"name": "ok", "color": "blue"}, {"color"}),
    ],
)
async def test_invalid_category_is_422(alice: Caller, body: dict[str, object], fields: set[str]) -> None:
    assert field_errors(await alice.request("POST", "/categories", json=body)) == fields


async def test_deleting_a_category_clears_it_from_its_tasks(alice: Caller) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Errands"})).json()
    task = await alice.create_task(category_id=category["id"])
    await alice.request("DELETE", f"/categories/{category['id']}")
    cleared = (await alice.request("GET", f"/tasks/{task['id']}")).json()
    assert cleared["category_id"] is None
    assert cleared["version"] == 2


async def test_a_task_cannot_use_another_users_category(alice: Caller, bob: Caller) -> None:
    theirs = (await bob.request("POST", "/categories", json={"name": "Secret"})).json()
    response = await alice.request("POST", "/tasks", json={"title": "t", "category_id": theirs["id"]})
    assert field_errors(response) == {"category_id"}
    unknown = await alice.request(
        "POST", "/tasks", json={"title": "t", "category_id": "01a00000-0000-7000-8000-000000000000"}
    )
    assert problem(unknown, 422)["detail"] == problem(response, 422)["detail"]  # existence is not revealed


async def test_concurrent_changes_of_a_category_are_applied_one_after_another(alice: Caller) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Work"})).json()
    responses = await asyncio.gather(
        *(alice.request("PATCH", f"/categories/{category['id']}", json={"name": f"Work {n}"}) for n in range(10))
    )
    assert [response.status_code for response in responses] == [200] * 10
    assert sorted(response.json()["version"] for response in responses) == list(range(2, 12))
    assert (await alice.request("GET", f"/categories/{category['id']}")).json()["version"] == 11


async def test_of_concurrent_changes_of_a_category_on_one_if_match_only_one_succeeds(alice: Caller) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Work"})).json()
    responses = await asyncio.gather(
        *(
            alice.request(
                "PATCH", f"/categories/{category['id']}", json={"name": f"Work {n}"}, headers={"If-Match": '"1"'}
            )
            for n in range(10)
        )
    )
    assert sorted(response.status_code for response in responses) == [200] + [412] * 9
    assert (await alice.request("GET", f"/categories/{category['id']}")).json()["version"] == 2
