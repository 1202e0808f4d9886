"""Liveness and readiness probes (public)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from todo_api.dependencies import Views
from todo_api.representation import json_response
from todo_api.routing import ApiRoute
from todo_api.schemas import Health
from todo_core.errors import StorageUnavailable

router = APIRouter(route_class=ApiRoute, tags=["health"])

_NO_TASK = UUID(int=0)  # no user has it: the query runs, and finds nothing


@router.get("/healthz", response_model=Health)
async def get_health() -> Response:
    """The process is up."""
    return json_response({"status": "ok"})


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "Database unreachable"}})
async def get_readiness(views: Views) -> Response:
    """The process can reach its database (a query of the tasks table answers)."""
    try:
        await views.get("", _NO_TASK)
    except StorageUnavailable:
        return json_response({"status": "unavailable"}, status_code=503, headers={"Retry-After": "2"})
    return json_response({"status": "ok"})
