"""The ASGI app of /mcp, which loads the MCP server (`todo_api.assistant`, and with it the MCP
SDK) at the first request that reaches it, not when the worker starts: the SDK is ~20 MB of a
worker's memory (160 MB with it, after `make bench`'s PostgreSQL runs), which a worker that never
serves an assistant need not carry. The first call waits for the import (in a thread, so the
worker's other requests go on meanwhile) and for the tools' schemas (~0.1 s)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from todo_api.container import Container


class AssistantEndpoint:
    """/mcp: the MCP server's app, loaded and started at the first request while the app runs
    (`open`, in its lifespan), its sessions stopped by `close`."""

    def __init__(self, container: Container, max_body_bytes: int) -> None:
        self._container = container
        self._max_body_bytes = max_body_bytes
        self._app: ASGIApp | None = None
        self._serving: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._open = False

    def open(self) -> None:
        """The app runs: /mcp may start its server."""
        self._open = True

    async def close(self) -> None:
        """Stop the server's sessions, if it was started."""
        self._open = False
        serving, self._serving, self._app = self._serving, None, None
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or await self._started()
        await app(scope, receive, send)

    async def _started(self) -> ASGIApp:
        async with self._starting:
            if self._app is None:
                if not self._open:  # as the SDK's app says when its sessions do not run
                    raise RuntimeError("the MCP endpoint serves only while the app runs (its lifespan opens it)")
                assistant = await asyncio.to_thread(importlib.import_module, "todo_api.assistant")
                server = assistant.build_server(self._container, assistant.http_acting_user)
                app = assistant.streamable_http_app(server, self._max_body_bytes)
                self._serving = await started_in_a_task_of_its_own(server.session_manager.run)
                self._app = app
            return self._app


async def started_in_a_task_of_its_own(context: Callable[[], AbstractAsyncContextManager[Any]]) -> asyncio.Task[None]:
    """Enter `context` in a task of its own and keep it entered until that task is cancelled.
    The MCP session manager's context holds an anyio task group, whose cancel scope must be left
    by the task that entered it; the request that started it, or a lifespan, ends in another."""
    entered = asyncio.Event()

    async def hold() -> None:
        async with context():
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(hold(), context=contextvars.Context())  # not the request's (its id)
    waiting = asyncio.create_task(entered.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # entering failed: say why
    return task
