"""Liveness and readiness probes (public)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from todo_api.dependencies import Keys, Schema, Views
from todo_api.problems import NOT_MIGRATED_DETAIL
from todo_api.representation import json_response
from todo_api.routing import ApiRoute
from todo_api.schemas.health import Health
from todo_core.errors import IdentityUnavailable, SchemaMissing, StorageUnavailable

router = APIRouter(route_class=ApiRoute, tags=["health"])

_NO_TASK = UUID(int=0)  # no user has it: the query runs, and finds nothing
_UNREACHABLE = "The database cannot be reached."
_NO_KEYS = (
    "The identity provider's keys (TODO_JWKS_URL) cannot be fetched, or hold no usable signing key: no token "
    "can be checked."
)


@router.get("/healthz", response_model=Health)
async def get_health() -> Response:
    """The process is up."""
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Health,
    responses={
        503: {
            "model": Health,
            "description": "Database unreachable, not migrated or at an older schema revision, or no signing keys",
        }
    },
)
async def get_readiness(views: Views, keys: Keys, schema: Schema) -> Response:
    """The process can serve requests: its database's schema is at the code's revision (or a
    newer one), it answers a query of the tasks table, and it has keys to check tokens with
    (with TODO_JWKS_URL: fetched, or fetchable now)."""
    try:
        await schema.check()
        if schema.refusal is not None:
            return _unavailable(schema.refusal)
        await views.get("", _NO_TASK)
        await keys.check()
    except SchemaMissing:
        return _unavailable(NOT_MIGRATED_DETAIL)
    except StorageUnavailable:
        return _unavailable(_UNREACHABLE)
    except IdentityUnavailable:
        return _unavailable(_NO_KEYS)
    return json_response({"status": "ok"})


def _unavailable(detail: str) -> Response:
    return json_response({"status": "unavailable", "detail": detail}, status_code=503, headers={"Retry-After": "2"})
