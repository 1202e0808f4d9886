"""The MCP tools on every backend (memory, SQLite, PostgreSQL), through the SDK's own client
connected in-process to the server `todo_api.assistant` builds: what each tool answers and
refuses. tests/system/test_mcp.py drives the same tools over HTTP (`todo serve`) and stdio
(`todo mcp`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.conftest import SQL_BACKENDS, Backend, SqlStore, bearer, settings_for
from tests.system.test_mcp import ALL_TOOLS, MALFORMED, ok, refused
from todo_api.app import create_app
from todo_api.assistant import build_server, token_acting_user
from todo_api.container import Container
from todo_core.identity import Identity


@pytest.fixture
def container(backend: Backend) -> Container:
    """The app's container, its stores those of the test's backend."""
    wired = Container(settings=settings_for("sqlite+aiosqlite:///unused.db"))
    wired.unit_of_work.override(providers.Callable(backend.uow_factory))
    wired.reader.override(providers.Callable(backend.reader_factory))
    wired.task_views.override(providers.Object(backend.views))
    return wired


Connect = Callable[[str], Any]


@pytest.fixture
def connect(container: Container) -> Connect:
    """Connects the SDK's client to the tools, acting for a user."""

    @asynccontextmanager
    async def connected(user_id: str) -> AsyncIterator[Client]:
        server = build_server(container, lambda _: user_id)
        async with Client(server) as client:
            yield client

    return connected


def new_user() -> str:
    return f"mcp-{uuid.uuid4().hex[:12]}"


async def test_every_tool_works_on_every_backend(connect: Connect) -> None:
    user = new_user()
    now = datetime.now(UTC)
    async with connect(user) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == ALL_TOOLS
        category = ok(await client.call_tool("add_category", {"user_id": user, "name": "Errands"}))
        duplicate = refused(await client.call_tool("add_category", {"user_id": user, "name": "errands"}))
        assert duplicate.lower().endswith("conflict: you already have a category named 'errands'")
        assert ok(await client.call_tool("list_categories", {"user_id": user}))["categories"] == [category]

        arguments = {"user_id": user, "title": "Post the parcel", "category_id": category["id"], "tags": ["post"]}
        added = ok(await client.call_tool("add_task", {**arguments, "idempotency_key": "parcel"}))
        assert added["status"] == "created" and added["task"]["category_id"] == category["id"]
        assert ok(await client.call_tool("add_task", {**arguments, "idempotency_key": "parcel"})) == added
        reused = refused(
            await client.call_tool("add_task", {**arguments, "title": "Other", "idempotency_key": "parcel"})
        )
        assert "idempotency_key" in reused
        task_id = added["task_id"]

        overdue = ok(
            await client.call_tool(
                "add_task", {"user_id": user, "title": "Late", "due_at": (now - timedelta(days=2)).isoformat()}
            )
        )
        due_today = ok(
            await client.call_tool("add_task", {"user_id": user, "title": "Now", "due_date": now.date().isoformat()})
        )
        overview = ok(await client.call_tool("get_overview", {"user_id": user}))
        assert [task["id"] for task in overview["overdue"]["tasks"]] == [overdue["task_id"]]
        assert [task["id"] for task in overview["today"]["tasks"]] == [due_today["task_id"]]
        assert overview["counts"] == {"overdue": 1, "today": 1, "next_7_days": 0}

        page = ok(await client.call_tool("list_tasks", {"user_id": user, "limit": 2}))
        assert len(page["tasks"]) == 2 and page["next_cursor"]
        last = ok(await client.call_tool("list_tasks", {"user_id": user, "limit": 2, "cursor": page["next_cursor"]}))
        assert [task["title"] for task in last["tasks"]] == ["Now"] and last["next_cursor"] is None
        forged = refused(await client.call_tool("list_tasks", {"user_id": user, "cursor": "forged"}))
        assert "cursor" in forged
        tagged = ok(await client.call_tool("list_tasks", {"user_id": user, "tag": ["post"], "status": "pending"}))
        assert [task["id"] for task in tagged["tasks"]] == [task_id]

        patched = ok(
            await client.call_tool(
                "update_task", {"user_id": user, "task_id": task_id, "priority": "high", "category_id": None}
            )
        )
        assert patched["task"]["priority"] == "high" and patched["task"]["category_id"] is None
        assert patched["task"]["tags"] == ["post"]
        step = ok(await client.call_tool("add_task", {"user_id": user, "title": "Tape", "parent_id": task_id}))
        moved = ok(
            await client.call_tool("move_task", {"user_id": user, "task_id": step["task_id"], "parent_id": None})
        )
        assert moved["status"] == "moved" and moved["task"]["parent_id"] is None

        completed = ok(await client.call_tool("complete_task", {"user_id": user, "task_id": task_id}))
        assert completed["status"] == "completed"
        reopened = ok(
            await client.call_tool("complete_task", {"user_id": user, "task_id": task_id, "completed": False})
        )
        assert reopened["status"] == "reopened" and reopened["task"]["completed"] is False

        batch = ok(
            await client.call_tool(
                "batch_tasks",
                {
                    "user_id": user,
                    "idempotency_key": "batch-1",
                    "operations": [
                        {"op": "create", "ref": "new", "body": {"title": "Made in a batch"}},
                        {"op": "move", "id": "$ref:new", "body": {"after": None}},
                        {"op": "update", "id": task_id, "body": {"title": "Posted"}},
                        {"op": "delete", "id": overdue["task_id"]},
                    ],
                },
            )
        )
        assert [result["status"] for result in batch["results"]] == ["created", "moved", "updated", "deleted"]
        assert batch["results"][3] == {"task_id": overdue["task_id"], "status": "deleted", "title": None, "task": None}
        other_batch = {"user_id": user, "idempotency_key": "batch-1", "operations": [{"op": "create", "body": {}}]}
        assert "idempotency_key" in refused(await client.call_tool("batch_tasks", other_batch))
        failed = refused(
            await client.call_tool(
                "batch_tasks", {"user_id": user, "operations": [{"op": "delete", "id": str(uuid.uuid4())}]}
            )
        )
        assert failed.endswith("Operation 0 failed, nothing was applied: No such task for this user")

        deleted = ok(await client.call_tool("delete_task", {"user_id": user, "task_id": task_id}))
        assert deleted["status"] == "deleted" and deleted["title"] == "Posted"
        remaining = ok(await client.call_tool("list_tasks", {"user_id": user}))["tasks"]
        assert sorted(task["title"] for task in remaining) == ["Made in a batch", "Now", "Tape"]


async def test_a_call_for_another_user_and_a_malformed_call_are_tool_errors(connect: Connect) -> None:
    user = new_user()
    async with connect(user) as client:
        for name in sorted(ALL_TOOLS):
            text = refused(await client.call_tool(name, {"user_id": "someone-else", "task_id": str(uuid.uuid4())}))
            assert "user_id" in text, name
        for name, calls in MALFORMED.items():
            for arguments in calls:
                refused(await client.call_tool(name, {"user_id": user, **arguments}))
        task_id = ok(await client.call_tool("add_task", {"user_id": user, "title": "Kept"}))["task_id"]
        blank = refused(await client.call_tool("update_task", {"user_id": user, "task_id": task_id, "title": " "}))
        assert blank.endswith("Invalid arguments: title: must not be blank")


def test_todo_mcp_acts_for_its_token_only_while_the_token_is_accepted() -> None:
    acting = token_acting_user(Identity("someone", time.time() + 60))
    assert acting(None) == "someone"  # type: ignore[arg-type]
    expired = token_acting_user(Identity("someone", time.time() - 1))
    with pytest.raises(ToolError, match="TODO_TOKEN has expired"):
        expired(None)  # type: ignore[arg-type]


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


async def test_mcp_over_http_starts_with_its_first_call_and_acts_for_the_tokens_user(store: SqlStore) -> None:
    """/mcp in the app itself (in-process, as `todo serve` runs it): loaded at the first call
    while the app runs, acting for the user of the call's token, stopped with the app; what a tool
    wrote, the REST API shows."""
    # A container of its own: the app's lifespan closes its pool and engine, not the session's.
    app = create_app(container=Container(settings=settings_for(store.url)))
    user = new_user()
    headers = {**bearer(user), "Accept": "application/json, text/event-stream"}
    arguments = {"user_id": user, "title": "Said to an assistant"}
    add = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add_task", "arguments": arguments}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        # Not started (as when uvicorn runs with `--lifespan off`): a failure of ours, as the SDK's.
        early = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        assert early.status_code == 500
        async with app.router.lifespan_context(app):
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
            assert listed.status_code == 200, listed.text
            assert {tool["name"] for tool in listed.json()["result"]["tools"]} == ALL_TOOLS
            added = await http.post("/mcp", json=add, headers=headers)
            assert added.status_code == 200, added.text
            assert not added.json()["result"].get("isError"), added.text
            tasks = (await http.get(f"/api/{user}/tasks", headers=bearer(user))).json()
            assert [task["title"] for task in tasks] == ["Said to an assistant"]
        late = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=headers)
        assert late.status_code == 500  # stopped with the app


async def test_concurrent_first_calls_of_mcp_over_http_build_one_server(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first calls wait for one another while the server loads: one server, one set of sessions."""
    import todo_api.assistant as assistant

    built: list[object] = []
    build = assistant.build_server

    def counted(*arguments: Any) -> Any:
        built.append(arguments)
        return build(*arguments)

    monkeypatch.setattr(assistant, "build_server", counted)
    app = create_app(container=Container(settings=settings_for(store.url)))
    user = new_user()
    headers = {**bearer(user), "Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        app.router.lifespan_context(app),
    ):
        answers = await asyncio.gather(*(http.post("/mcp", json=call, headers=headers) for _ in range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len(built) == 1
