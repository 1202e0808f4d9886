"""Every route finds a valid request's arguments by its plan (todo_api/direct_calls.py), not by
FastAPI's generic solver: a route that stops being planned (a cookie parameter, a `def` or
generator dependency) would quietly cost ~300 µs more per request."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from tests.conftest import settings_for
from todo_api.app import create_app
from todo_api.direct_calls import plan_of
from todo_api.routing import ApiRoute


def _routes(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _routes(included.routes) if included is not None else (route,)


def test_every_api_route_is_planned(tmp_path: Path) -> None:
    app = create_app(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}"))
    routes = [route for route in _routes(app.router.routes) if isinstance(route, ApiRoute)]
    unplanned = [
        f"{sorted(route.methods)} {route.path}"
        for route in routes
        if plan_of(route.dependant, embed_body_fields=route._embed_body_fields) is None
    ]
    assert len(routes) > 30 and unplanned == []
