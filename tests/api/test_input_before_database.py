"""Input is checked before the database is asked anything: while the database cannot be
reached, bad input is still a 422 that says what is wrong (and good input a 503)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.assertions import field_errors, problem
from tests.conftest import SqlStore, api_client, bearer
from todo_adapters.sqlalchemy.engine import create_engine


@pytest.fixture
async def unreachable(sqlite_store: SqlStore, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of an app whose database file cannot be opened, and a user."""
    url = f"sqlite+aiosqlite:///{tmp_path}/no/such/directory/todo.db"
    engine = create_engine(url)
    try:
        async with api_client(SqlStore(url, engine, sqlite_store.views, None)) as http:
            user = f"user-{uuid.uuid4().hex[:16]}"
            http.headers.update(bearer(user))
            yield http, user
    finally:
        await engine.dispose()


async def test_a_category_with_a_bad_color_is_a_422_while_the_database_is_down(
    unreachable: tuple[httpx.AsyncClient, str],
) -> None:
    http, user = unreachable
    assert field_errors(await http.post(f"/api/{user}/categories", json={"name": "Work", "color": "red"})) == {"color"}
    problem(await http.post(f"/api/{user}/categories", json={"name": "Work", "color": "#ff0000"}), 503)


async def test_settings_with_an_unknown_zone_are_a_422_while_the_database_is_down(
    unreachable: tuple[httpx.AsyncClient, str],
) -> None:
    http, user = unreachable
    assert field_errors(await http.put(f"/api/{user}/settings", json={"time_zone": "Mars/Olympus"})) == {"time_zone"}
    problem(await http.put(f"/api/{user}/settings", json={"time_zone": "Europe/Berlin"}), 503)


async def test_an_erasure_without_the_user_id_is_a_422_while_the_database_is_down(
    unreachable: tuple[httpx.AsyncClient, str],
) -> None:
    http, user = unreachable
    assert field_errors(await http.delete(f"/api/{user}", params={"confirm": "someone-else"})) == {"confirm"}
    problem(await http.delete(f"/api/{user}", params={"confirm": user}), 503)
