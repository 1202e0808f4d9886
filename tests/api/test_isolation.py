"""Nobody sees, changes or learns of another user's tasks."""

from __future__ import annotations

import pytest

from tests.api.assertions import problem
from tests.conftest import Caller

TASK_ROUTES = [
    ("GET", "", None),
    ("PUT", "", {"title": "hijacked"}),
    ("PATCH", "", {"title": "hijacked"}),
    ("PATCH", "/complete", None),
    ("DELETE", "", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), TASK_ROUTES)
async def test_another_users_task_id_is_404_and_stays_unchanged(
    alice: Caller, bob: Caller, method: str, suffix: str, body: dict[str, str] | None
) -> None:
    theirs = await alice.create_task(title="Alice's")
    response = await bob.request(method, f"/tasks/{theirs['id']}{suffix}", json=body)
    mine_unknown = await bob.request(method, f"/tasks/01a00000-0000-7000-8000-000000000000{suffix}", json=body)
    assert problem(response, 404) == problem(mine_unknown, 404)  # indistinguishable from a missing id
    after = (await alice.request("GET", f"/tasks/{theirs['id']}")).json()
    assert after == theirs


async def test_lists_tags_and_reminders_show_only_the_callers_tasks(alice: Caller, bob: Caller) -> None:
    await alice.create_task(title="Alice's", tags=["private"], remind_at="2020-01-01T00:00:00Z")
    assert (await bob.request("GET", "/tasks")).json() == []
    assert (await bob.request("GET", "/tasks", params={"q": "Alice"})).json() == []
    assert (await bob.request("GET", "/tags")).json() == []
    assert (await bob.request("GET", "/reminders")).json() == []
    assert (await bob.request("GET", "/categories")).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tasks"),
        ("POST", "/tasks"),
        ("GET", "/tasks/01a00000-0000-7000-8000-000000000000"),
        ("DELETE", "/tasks/01a00000-0000-7000-8000-000000000000"),
        ("GET", "/categories"),
        ("GET", "/tags"),
        ("GET", "/reminders"),
    ],
)
async def test_a_token_for_another_user_is_403(alice: Caller, bob: Caller, method: str, path: str) -> None:
    response = await bob.client.request(method, alice.url(path), headers=bob.headers, json={"title": "x"})
    problem(response, 403)
