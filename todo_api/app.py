"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from todo_adapters.auth import JwksKeys, mint_token
from todo_api.assistant_endpoint import AssistantEndpoint
from todo_api.container import Container
from todo_api.cross_origin import CrossOrigin
from todo_api.docs import install_docs
from todo_api.logs import lighten_log_records
from todo_api.maintenance import deliver_periodically, purge_periodically, sweep_imports_logged
from todo_api.metrics import Metrics
from todo_api.middleware import MCP_PATH, Authentication, BodySizeLimit, RequestPipeline
from todo_api.openapi import DESCRIPTION, TAGS, operation_id, shaped
from todo_api.problems import install_problem_handlers
from todo_api.rate_limits import RateLimiter, RateLimiting
from todo_api.routes import (
    account,
    batch,
    calendar,
    categories,
    events,
    health,
    metrics,
    portability,
    problems,
    sync,
    tasks,
    user_settings,
    webhooks,
)
from todo_api.routes import assistant as assistant_routes
from todo_api.schema_gate import SchemaGuard
from todo_api.settings import DEMO_TOKEN_SECONDS, DEMO_USER, DEVELOPMENT_SECRET, Settings

logger = logging.getLogger(__name__)

#: How often a worker of several writes its database pool's usage where a scrape reads it.
POOL_METRICS_SECONDS = 1.0


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the app. Pass `settings` (default: from the environment) or a ready `container`
    (with overrides) for tests."""
    if container is None:
        container = Container(settings=settings or Settings())
    resolved: Settings = container.settings()

    # The MCP server for AI assistants (todo_api/assistant.py), at /mcp behind the bearer token.
    assistant_endpoint = AssistantEndpoint(container, resolved.max_body_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What exists by now (modules, routes, schemas, SQL statements: ~130,000 objects) lives
        # as long as the process. Out of the collector's sight, a full collection under load
        # takes a few milliseconds instead of ~90 ms: that pause was the slowest requests' wait.
        gc.collect()
        gc.freeze()
        lighten_log_records()
        postgres = container.backend() == "postgresql"
        if postgres:
            container.change_listener().start()
        # SQLite: what imports interrupted by a crash wrote ahead, deleted at once (not shown meanwhile).
        sweeping = None if postgres else asyncio.create_task(sweep_imports_logged(container))
        purging = (
            asyncio.create_task(
                purge_periodically(
                    container,
                    resolved,
                    interval=resolved.purge_interval_seconds,
                    # Not while the process is still warming up.
                    first_wait=min(resolved.purge_interval_seconds, 60),
                )
            )
            if resolved.maintain_in_server
            else None
        )
        delivering = (
            asyncio.create_task(deliver_periodically(container, resolved)) if resolved.webhooks_in_server else None
        )
        measured: Metrics = container.metrics()
        measured.forget_dead_workers()
        measuring = asyncio.create_task(_measure_pool_periodically(measured)) if measured.multiprocess else None
        assistant_endpoint.open()
        checking_schema = asyncio.create_task(container.schema_gate().check_logged())
        yield
        await assistant_endpoint.close()
        for task in (purging, delivering, measuring, sweeping, checking_schema):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        measured.leave()
        # Release what the singletons hold: the listening and pooled connections, the key
        # server's client.
        if postgres:
            await container.change_listener().stop()
            await container.postgres_pool().close()
            await container.export_locks().close()
        else:
            await container.engine().dispose()
        key_source = container.key_source()
        if isinstance(key_source, JwksKeys):
            await key_source.aclose()
        limiter: RateLimiter | None = container.rate_limiter()
        if limiter is not None:
            await limiter.close()
        await container.webhook_sender().aclose()

    app = FastAPI(
        title="todo",
        version="1.0.0",
        summary="Every user's tasks, and nobody else's.",
        description=DESCRIPTION,
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from the service's own files
        redoc_url=None,
    )
    app.state.container = container
    install_problem_handlers(app)
    # Innermost: a request refused for the schema has been authenticated and counted like any other.
    app.add_middleware(SchemaGuard, gate=container.schema_gate)
    # The id is set before anything logs, and the time counts everything; authentication comes
    # before the rate limits (a request counts against the user its token proved it to be).
    app.add_middleware(
        RequestPipeline,
        router=app.router,
        metrics=container.metrics,
        user_id_hasher=container.user_id_hasher,
        access_log=resolved.access_log,
        authentication=Authentication(container.identity_verifier, public_url=resolved.public_url),
        rate_limiting=RateLimiting(container.rate_limiter, user_id_hasher=container.user_id_hasher),
        body_size=BodySizeLimit(resolved.max_body_bytes, max_import_bytes=resolved.max_import_bytes),
    )
    if resolved.cors_origins:
        # Outside authentication: a browser's preflight carries no token and is answered here; the
        # real request that follows is authenticated as any other. Outside the telemetry too, whose
        # own answer to a failure (500, with the request id to report) the page must be able to read.
        app.add_middleware(CrossOrigin, origins=resolved.cors_origins)
    # Outermost of all: the scheme and client address as the proxy in front saw them, when it is
    # one to believe (the calendar feed links are built from the scheme and Host).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=resolved.forwarded_allow_ips)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(tasks.router)
    app.include_router(batch.router)
    app.include_router(categories.router)
    app.include_router(user_settings.router)
    app.include_router(sync.router)
    app.include_router(portability.router)
    app.include_router(events.router)
    app.include_router(calendar.router)
    app.include_router(calendar.feeds_router)
    app.include_router(webhooks.router)
    app.include_router(account.router)
    app.include_router(problems.router)
    app.include_router(assistant_routes.router)
    app.router.routes.append(Route(MCP_PATH, endpoint=assistant_endpoint))
    install_docs(app, demo_token=_demo_token(resolved) if resolved.signs_with_the_development_secret else None)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = shaped(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _measure_pool_periodically(measured: Metrics) -> None:
    """With several workers, a scrape reads each worker's pool where the worker last wrote it:
    write it every second (the worker that answers the scrape reads its own afresh)."""
    while True:
        measured.refresh_pool()
        await asyncio.sleep(POOL_METRICS_SECONDS)


def _demo_token(settings: Settings) -> Callable[[], str]:
    """Development mode only: fresh tokens for the demo user `make run` printed one for."""

    def mint() -> str:
        return mint_token(
            DEVELOPMENT_SECRET,
            DEMO_USER,
            ttl_seconds=DEMO_TOKEN_SECONDS,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    return mint
