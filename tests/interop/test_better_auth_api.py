"""End to end: real Better Auth tokens (EdDSA, from its JWKS) through the HTTP API on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import SqlStore, api_client
from tests.interop.conftest import BetterAuthIssuer

pytestmark = pytest.mark.slow  # starts a Node process


@pytest.fixture
async def api(better_auth_issuer: BetterAuthIssuer, sqlite_store: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    """The real app configured as DESIGN.md says for Better Auth: its JWKS, `iss` and `aud`."""
    settings = {
        "jwks_url": better_auth_issuer.jwks_url,
        "jwt_issuer": better_auth_issuer.base_url,
        "jwt_audience": better_auth_issuer.base_url,
    }
    async with api_client(sqlite_store, **settings) as http:
        yield http


def email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_better_auth_user_creates_a_task_and_lists_it_back(
    better_auth_issuer: BetterAuthIssuer, api: httpx.AsyncClient
) -> None:
    token, user_id = better_auth_issuer.mint(email())

    created = await api.post(f"/api/{user_id}/tasks", headers=bearer(token), json={"title": "Ship the API"})
    listed = await api.get(f"/api/{user_id}/tasks", headers=bearer(token))

    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/{user_id}/tasks/{created.json()['id']}"
    assert listed.status_code == 200, listed.text
    assert [(item["id"], item["title"]) for item in listed.json()] == [(created.json()["id"], "Ship the API")]


async def test_better_auth_token_on_another_users_path_is_403(
    better_auth_issuer: BetterAuthIssuer, api: httpx.AsyncClient
) -> None:
    token_a, user_a = better_auth_issuer.mint(email())
    _, user_b = better_auth_issuer.mint(email())
    assert user_a != user_b

    response = await api.get(f"/api/{user_b}/tasks", headers=bearer(token_a))

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_second_better_auth_user_cannot_read_the_first_users_task(
    better_auth_issuer: BetterAuthIssuer, api: httpx.AsyncClient
) -> None:
    token_a, user_a = better_auth_issuer.mint(email())
    token_b, user_b = better_auth_issuer.mint(email())
    created = await api.post(f"/api/{user_a}/tasks", headers=bearer(token_a), json={"title": "A's private task"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    through_own_path = await api.get(f"/api/{user_b}/tasks/{task_id}", headers=bearer(token_b))
    through_a_path = await api.get(f"/api/{user_a}/tasks/{task_id}", headers=bearer(token_b))
    own_list = await api.get(f"/api/{user_b}/tasks", headers=bearer(token_b))
    owner_view = await api.get(f"/api/{user_a}/tasks/{task_id}", headers=bearer(token_a))

    assert through_own_path.status_code == 404, through_own_path.text
    assert through_own_path.headers["content-type"] == "application/problem+json"
    assert through_a_path.status_code == 403, through_a_path.text
    assert own_list.status_code == 200
    assert own_list.json() == []
    assert owner_view.status_code == 200
    assert owner_view.json() == created.json()


async def test_tampered_better_auth_token_is_401_over_http(
    better_auth_issuer: BetterAuthIssuer, api: httpx.AsyncClient
) -> None:
    token, user_id = better_auth_issuer.mint(email())
    header, payload, signature = token.split(".")
    # One character from the middle changed: every bit of it is signature (the last character's
    # low bits are padding, and a changed padding bit makes the token malformed, not forged).
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]

    response = await api.get(f"/api/{user_id}/tasks", headers=bearer(f"{header}.{payload}.{flipped}"))

    assert response.status_code == 401, response.text
    detail = response.json()["detail"]
    assert detail.startswith("The token's signature does not verify")
    assert response.headers["www-authenticate"] == f'Bearer error="invalid_token", error_description="{detail}"'
