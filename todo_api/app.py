"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from todo_adapters.auth import JwksKeys
from todo_api.container import Container
from todo_api.middleware import API_PREFIX, BearerAuthentication, BodySizeLimit
from todo_api.problems import document_problem_media_type, install_problem_handlers
from todo_api.routes import categories, events, health, sync, tasks
from todo_api.settings import Settings
from todo_core.use_cases.sync import purge_expired

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the app. Pass `settings` (default: from the environment) or a ready `container`
    (with overrides) for tests."""
    if container is None:
        container = Container(settings=settings or Settings())
    resolved: Settings = container.settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What exists by now (modules, routes, schemas, SQL statements: ~130,000 objects) lives
        # as long as the process. Out of the collector's sight, a full collection under load
        # takes a few milliseconds instead of ~90 ms: that pause was the slowest requests' wait.
        gc.collect()
        gc.freeze()
        postgres = container.backend() == "postgresql"
        if postgres:
            container.change_listener().start()
        purging = asyncio.create_task(_purge_periodically(container, resolved))
        yield
        purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purging
        # Release what the singletons hold: the listening and pooled connections, the key
        # server's client.
        if postgres:
            await container.change_listener().stop()
            await container.postgres_pool().close()
        else:
            await container.engine().dispose()
        key_source = container.key_source()
        if isinstance(key_source, JwksKeys):
            await key_source.aclose()

    app = FastAPI(
        title="todo",
        version="1.0.0",
        summary="Every user's tasks, and nobody else's.",
        license_info={"name": "MIT", "identifier": "MIT"},
        servers=[{"url": "/", "description": "This server"}],
        lifespan=lifespan,
    )
    app.state.container = container
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=resolved.max_body_bytes)
    app.add_middleware(BearerAuthentication, verifier=container.identity_verifier)
    if resolved.cors_origins:
        # Outermost: a browser's preflight carries no token and must be answered before
        # authentication; the real request that follows is authenticated as any other.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=resolved.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Location", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(categories.router)
    app.include_router(sync.router)
    app.include_router(events.router)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = document_problem_media_type(default_openapi())
            app.openapi_schema = _document_links(_document_bearer_security(_document_request_defaults(document)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _purge_periodically(container: Container, settings: Settings) -> None:
    """Forget expired tombstones and idempotency keys now and then (every worker does; a purge
    that finds nothing costs two index lookups)."""
    interval = settings.purge_interval_seconds
    await asyncio.sleep(min(interval, 60))  # not while the process is still warming up
    while True:
        try:
            purged = await purge_expired(
                container.retention(),
                container.clock(),
                tombstones=timedelta(days=settings.tombstone_days),
                keys=timedelta(hours=settings.idempotency_key_hours),
            )
            logger.info("purged %d tombstones and %d idempotency keys", *purged)
        except Exception:  # the database may be down: try again next time
            logger.exception("purging expired tombstones and idempotency keys failed")
        await asyncio.sleep(interval)


def _document_bearer_security(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare the bearer token on every /api/ operation, and none on the others (the health
    probes). `BearerAuthentication` checks it before routing, so no route declares it as a
    dependency (which would parse it again)."""
    schemes = openapi.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["HTTPBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from Better Auth (or `todo token USER_ID`)",
    }
    for path, operations in openapi.get("paths", {}).items():
        for operation in operations.values():
            operation["security"] = [{"HTTPBearer": []}] if path.startswith(API_PREFIX) else []
    return openapi


def _document_request_defaults(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say the defaults of request bodies' properties in words rather than as `default`.

    Client generators read `default` as "always present": openapi-typescript makes such a
    property required, and a front end would have to send `description`, `completed` and
    `priority` with every new task.
    """
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                reference = media.get("schema", {}).get("$ref", "")
                schema = schemas.get(reference.removeprefix("#/components/schemas/"), {})
                for field in schema.get("properties", {}).values():
                    if "default" in field:
                        said = f"Default: `{json.dumps(field.pop('default'))}`."
                        described = field.get("description", "").rstrip(".")
                        field["description"] = f"{described}. {said}" if described else said
    return openapi


_ITEM_PATH = re.compile(r"(?P<collection>.+)/\{(?P<key>[^/{}]+)\}")
_PATH_PARAMETER = re.compile(r"\{([^/{}]+)\}")


def _document_links(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add OpenAPI links from a resource in a response to what can be done with it next.

    Derived from the path templates: for an item path `C/{key}` whose collection `C` has a
    POST, every success response carrying a resource (one with an `id`) of that POST, of the
    item's operations and of those under `C/{key}/` links to each of these operations, with
    `key` taken from the response's `id` and the other path parameters from the request.
    Clients (and schemathesis's stateful tests) learn that the `id` of a created task is the
    `task_id` of its GET, PUT, PATCH, DELETE and complete.
    """
    paths: dict[str, dict[str, Any]] = openapi.get("paths", {})
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    for item_path in paths:
        matched = _ITEM_PATH.fullmatch(item_path)
        if matched is None or "post" not in paths.get(matched["collection"], {}):
            continue
        names = _PATH_PARAMETER.findall(item_path)
        key = matched["key"]
        parameters = {name: "$response.body#/id" if name == key else f"$request.path.{name}" for name in names}
        # Only paths with no parameter of their own: the request and the response name all of theirs.
        item_operations = [
            operation
            for path, operations in paths.items()
            if (path == item_path or path.startswith(f"{item_path}/")) and _PATH_PARAMETER.findall(path) == names
            for operation in operations.values()
        ]
        for producer in [paths[matched["collection"]]["post"], *item_operations]:
            for status, response in producer.get("responses", {}).items():
                if status.startswith("2") and _carries_id(response, schemas):
                    response.setdefault("links", {}).update(
                        (target["operationId"], {"operationId": target["operationId"], "parameters": parameters})
                        for target in item_operations
                        if target is not producer
                    )
    return openapi


def _carries_id(response: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether a response's JSON body is a resource with an `id`."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        schema = schemas.get(reference.removeprefix("#/components/schemas/"), {})
    return "id" in schema.get("properties", {})
