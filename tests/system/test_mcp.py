"""The MCP server, as AI assistants reach it: the SDK's own client over streamable HTTP against a
real `todo serve` (on the session's SQLite and PostgreSQL databases), and over stdio against a
real `todo mcp`. What the tools write, the REST API and the sync feed show.

(The in-memory backend is for tests of the domain: `todo serve` and `todo mcp` always run on a
database, so it has no place here.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import ProtectedResourceMetadata
from mcp_types import CallToolResult

from tests.conftest import TEST_SECRET, SqlStore, api_client, bearer
from tests.ports import free_port
from tests.system.test_persistence import Server, clean_environment, todo_command

pytestmark = pytest.mark.slow

PHASE_THREE_TOOLS = {"add_task", "list_tasks", "complete_task", "delete_task", "update_task"}
FUZZER = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_mcp.py"
FUZZ_SECONDS = int(os.environ.get("TODO_FUZZ_MCP_SECONDS", "10"))
ALL_TOOLS = PHASE_THREE_TOOLS | {"move_task", "get_overview", "list_categories", "add_category", "batch_tasks"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The session's migrated database of one backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`todo serve` on that database."""
    workdir = tmp_path_factory.mktemp("mcp")
    port = free_port()
    log = workdir / "server.log"
    environment = clean_environment(
        TODO_DATABASE_URL=database_url, TODO_JWT_SECRET=TEST_SECRET, TODO_PORT=str(port), TODO_RATE_LIMITS="none"
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            todo_command("serve"), env=environment, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    running = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        running.wait_until_healthy()
        yield running
    finally:
        running.stop()


@asynccontextmanager
async def connected(server: Server, user_id: str) -> AsyncIterator[Client]:
    """The SDK's client on /mcp, with a token for `user_id`."""
    async with (
        httpx2.AsyncClient(headers=bearer(user_id), timeout=30) as http,
        Client(streamable_http_client(f"{server.base_url}/mcp", http_client=http)) as client,
    ):
        yield client


def new_user() -> str:
    return f"mcp-{os.urandom(6).hex()}"


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a call that succeeded; its text is the same JSON."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = result.content[0]
    assert text.type == "text"
    assert json.loads(text.text) == result.structured_content
    return result.structured_content


def refused(result: CallToolResult) -> str:
    """The text of a call that was a tool error (not a protocol error, not a crash)."""
    assert result.is_error, result.structured_content
    text = result.content[0]
    assert text.type == "text"
    return text.text


def listed(response: httpx.Response) -> list[dict[str, Any]]:
    """The tasks of a list answer: a JSON array (or, before lists became arrays, its `items`)."""
    body = response.json()
    items: list[dict[str, Any]] = body if isinstance(body, list) else body["items"]
    return items


def rest(server: Server, user_id: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}/api/{user_id}{path}", headers=bearer(user_id), **kwargs)


async def test_without_a_token_mcp_is_401_naming_where_to_learn_how_to_get_one(server: Server) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = httpx.post(f"{server.base_url}/mcp", json=call, headers=headers)
        assert answer.status_code == 401
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        metadata_url = extract_resource_metadata_from_www_auth(answer)
        assert metadata_url == f"{server.base_url}/.well-known/oauth-protected-resource"
        document = httpx.get(metadata_url).json()
        assert document["resource"] == server.base_url
        assert document["bearer_methods_supported"] == ["header"]
        # Signed with a shared secret, the tokens come from no authorization server to name.
        assert "authorization_servers" not in document


async def test_the_resource_metadata_names_the_better_auth_issuer_when_tokens_come_from_a_jwks(
    sqlite_store: SqlStore,
) -> None:
    issuer = "https://app.example"
    async with api_client(sqlite_store, jwks_url=f"{issuer}/api/auth/jwks", jwt_issuer=issuer) as http:
        answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert answer.status_code == 401
        metadata_url = extract_resource_metadata_from_www_auth(answer)
        assert metadata_url == "http://testserver/.well-known/oauth-protected-resource"
        document = (await http.get(metadata_url)).json()
    metadata = ProtectedResourceMetadata.model_validate(document)  # as the SDK's OAuth client reads it
    assert [str(server).rstrip("/") for server in metadata.authorization_servers] == [issuer]
    assert str(metadata.resource).rstrip("/") == "http://testserver"


async def test_the_tools_are_listed_with_schemas_and_hints(server: Server) -> None:
    async with connected(server, new_user()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == ALL_TOOLS
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert "user_id" in tool.input_schema["required"], tool.name
        assert tool.annotations is not None and tool.description
    assert tools["delete_task"].annotations.destructive_hint is True
    assert tools["batch_tasks"].annotations.destructive_hint is True
    assert tools["list_tasks"].annotations.read_only_hint is True
    assert tools["get_overview"].annotations.read_only_hint is True
    assert tools["complete_task"].annotations.idempotent_hint is True
    assert tools["add_task"].annotations.idempotent_hint is False
    add = tools["add_task"].input_schema
    assert add["required"] == ["user_id", "title"]
    # The REST schema's own rules.
    assert add["properties"]["title"]["maxLength"] == 200
    assert {"priority", "tags", "due_at", "due_date", "time_zone", "remind_at", "recurrence"} <= set(add["properties"])
    assert {"parent_id", "category_id", "description"} <= set(add["properties"])
    assert tools["list_tasks"].input_schema["properties"]["status"]["default"] == "all"
    assert tools["update_task"].input_schema["required"] == ["user_id", "task_id"]


async def test_the_phase_three_tools_do_what_they_say_and_rest_and_sync_see_it(server: Server) -> None:
    user = new_user()
    since = rest(server, user, "GET", "/changes").json()["next_since"]
    async with connected(server, user) as client:
        added = ok(await client.call_tool("add_task", {"user_id": user, "title": "Buy milk", "description": "2 l"}))
        assert added["status"] == "created" and added["title"] == "Buy milk"
        task_id = added["task_id"]
        assert added["task"]["id"] == task_id and added["task"]["description"] == "2 l"
        assert rest(server, user, "GET", f"/tasks/{task_id}").json() == added["task"]

        other = ok(await client.call_tool("add_task", {"user_id": user, "title": "Call mum"}))["task_id"]
        listed = ok(await client.call_tool("list_tasks", {"user_id": user}))
        assert [task["id"] for task in listed["tasks"]] == [task_id, other]

        updated = ok(
            await client.call_tool("update_task", {"user_id": user, "task_id": task_id, "title": "Buy oat milk"})
        )
        assert updated["status"] == "updated" and updated["title"] == "Buy oat milk"
        assert updated["task"]["description"] == "2 l"  # what was not given is unchanged

        completed = ok(await client.call_tool("complete_task", {"user_id": user, "task_id": task_id}))
        assert completed["status"] == "completed" and completed["task"]["completed"] is True
        again = ok(await client.call_tool("complete_task", {"user_id": user, "task_id": task_id}))
        assert again["task"]["completed"] is True  # not a toggle: a retry changes nothing
        pending = ok(await client.call_tool("list_tasks", {"user_id": user, "status": "pending"}))
        assert [task["id"] for task in pending["tasks"]] == [other]
        done = ok(await client.call_tool("list_tasks", {"user_id": user, "status": "completed"}))
        assert [task["id"] for task in done["tasks"]] == [task_id]

        deleted = ok(await client.call_tool("delete_task", {"user_id": user, "task_id": task_id}))
        assert deleted == {**deleted, "task_id": task_id, "status": "deleted", "title": "Buy oat milk"}
        assert rest(server, user, "GET", f"/tasks/{task_id}").status_code == 404
        gone = refused(await client.call_tool("delete_task", {"user_id": user, "task_id": task_id}))
        assert "No such task" in gone
    changes = rest(server, user, "GET", "/changes", params={"since": since}).json()
    assert [task["id"] for task in changes["tasks"]] == [other]
    assert changes["deleted"]["tasks"] == [task_id]


async def test_full_fields_search_move_categories_and_overview(server: Server) -> None:
    user = new_user()
    now = datetime.now(UTC)
    async with connected(server, user) as client:
        category = ok(await client.call_tool("add_category", {"user_id": user, "name": "Home", "color": "#AABBCC"}))
        assert category["color"] == "#aabbcc"
        assert ok(await client.call_tool("list_categories", {"user_id": user}))["categories"] == [category]
        full = ok(
            await client.call_tool(
                "add_task",
                {
                    "user_id": user,
                    "title": "Water the plants",
                    "priority": "high",
                    "tags": ["garden", "weekly"],
                    "due_at": (now - timedelta(hours=1)).isoformat(),
                    "remind_at": (now - timedelta(hours=2)).isoformat(),
                    "recurrence": "FREQ=WEEKLY",
                    "time_zone": "Europe/Berlin",
                    "category_id": category["id"],
                },
            )
        )["task"]
        assert full["priority"] == "high" and full["tags"] == ["garden", "weekly"]
        assert full["recurrence"] == "FREQ=WEEKLY" and full["category_id"] == category["id"]
        today = ok(
            await client.call_tool("add_task", {"user_id": user, "title": "Today", "due_date": now.date().isoformat()})
        )
        soon = ok(
            await client.call_tool(
                "add_task", {"user_id": user, "title": "Soon", "due_date": (now + timedelta(days=3)).date().isoformat()}
            )
        )
        await client.call_tool(
            "add_task", {"user_id": user, "title": "Later", "due_date": (now + timedelta(days=20)).date().isoformat()}
        )
        step = ok(
            await client.call_tool("add_task", {"user_id": user, "title": "Fill the can", "parent_id": full["id"]})
        )
        assert step["task"]["parent_id"] == full["id"]

        found = ok(await client.call_tool("list_tasks", {"user_id": user, "q": "PLANTS", "priority": ["high"]}))
        assert [task["id"] for task in found["tasks"]] == [full["id"]]
        page = ok(await client.call_tool("list_tasks", {"user_id": user, "limit": 2, "sort": "title"}))
        assert len(page["tasks"]) == 2 and page["next_cursor"]
        rest_page = ok(
            await client.call_tool(
                "list_tasks", {"user_id": user, "limit": 2, "sort": "title", "cursor": page["next_cursor"]}
            )
        )
        titles = [task["title"] for task in page["tasks"] + rest_page["tasks"]]
        assert titles == ["Fill the can", "Later", "Soon", "Today"]

        moved = ok(
            await client.call_tool("move_task", {"user_id": user, "task_id": step["task_id"], "parent_id": None})
        )
        assert moved["status"] == "moved" and moved["task"]["parent_id"] is None
        cleared = ok(
            await client.call_tool("update_task", {"user_id": user, "task_id": soon["task_id"], "due_date": None})
        )
        assert cleared["task"]["due_date"] is None  # null clears
        await client.call_tool(
            "update_task",
            {"user_id": user, "task_id": soon["task_id"], "due_date": (now + timedelta(days=3)).date().isoformat()},
        )

        overview = ok(await client.call_tool("get_overview", {"user_id": user}))
    assert overview["time_zone"] == "UTC"
    assert [task["title"] for task in overview["overdue"]["tasks"]] == ["Water the plants"]
    assert [task["id"] for task in overview["today"]["tasks"]] == [today["task_id"]]
    assert [task["id"] for task in overview["next_7_days"]["tasks"]] == [soon["task_id"]]
    assert overview["counts"] == {"overdue": 1, "today": 1, "next_7_days": 1}


async def test_a_batch_applies_all_or_nothing_and_an_idempotency_key_makes_a_retry_safe(server: Server) -> None:
    user = new_user()
    async with connected(server, user) as client:
        batch = ok(
            await client.call_tool(
                "batch_tasks",
                {
                    "user_id": user,
                    "operations": [
                        {"op": "create", "ref": "trip", "body": {"title": "Plan the trip"}},
                        {"op": "create", "body": {"title": "Book a hotel", "parent_id": "$ref:trip"}},
                        {"op": "complete", "id": "$ref:trip", "body": {"completed": True}},
                    ],
                },
            )
        )
        statuses = [result["status"] for result in batch["results"]]
        assert statuses == ["created", "created", "completed"]
        assert batch["results"][1]["task"]["parent_id"] == batch["results"][0]["task_id"]

        failed = refused(
            await client.call_tool(
                "batch_tasks",
                {
                    "user_id": user,
                    "operations": [
                        {"op": "create", "body": {"title": "Never made"}},
                        {"op": "patch", "id": batch["results"][0]["task_id"], "body": {"priority": "urgent"}},
                    ],
                },
            )
        )
        assert "Operation 1" in failed and "priority" in failed
        titles = [task["title"] for task in listed(rest(server, user, "GET", "/tasks"))]
        assert "Never made" not in titles

        first = ok(await client.call_tool("add_task", {"user_id": user, "title": "Once", "idempotency_key": "k-1"}))
        retry = ok(await client.call_tool("add_task", {"user_id": user, "title": "Once", "idempotency_key": "k-1"}))
        assert retry == first
        reused = refused(
            await client.call_tool("add_task", {"user_id": user, "title": "Another", "idempotency_key": "k-1"})
        )
        assert "idempotency_key" in reused
    titles = [task["title"] for task in listed(rest(server, user, "GET", "/tasks"))]
    assert titles.count("Once") == 1 and "Another" not in titles


async def test_a_user_cannot_see_change_or_delete_another_users_tasks(server: Server) -> None:
    alice, bob = new_user(), new_user()
    async with connected(server, alice) as as_alice:
        secret = ok(await as_alice.call_tool("add_task", {"user_id": alice, "title": "Alice's secret"}))["task_id"]
    async with connected(server, bob) as as_bob:
        # Bob's token, Alice's user id: refused, whatever the tool.
        for name, arguments in [
            ("list_tasks", {}),
            ("get_overview", {}),
            ("list_categories", {}),
            ("add_task", {"title": "Planted"}),
            ("complete_task", {"task_id": secret}),
            ("delete_task", {"task_id": secret}),
            ("update_task", {"task_id": secret, "title": "Mine now"}),
        ]:
            text = refused(await as_bob.call_tool(name, {"user_id": alice, **arguments}))
            assert text.endswith("user_id is not the user this connection acts for"), (name, text)
        # Bob's own id, Alice's task: no such task, as for an id that exists for nobody.
        nobody = "01a25098-0000-7000-8000-000000000000"
        for name, arguments in [
            ("complete_task", {}),
            ("delete_task", {}),
            ("update_task", {"title": "Mine now"}),
            ("move_task", {"parent_id": None}),
        ]:
            theirs = refused(await as_bob.call_tool(name, {"user_id": bob, "task_id": secret, **arguments}))
            missing = refused(await as_bob.call_tool(name, {"user_id": bob, "task_id": nobody, **arguments}))
            assert theirs == missing.replace(nobody, secret) and "Alice" not in theirs, name
        assert ok(await as_bob.call_tool("list_tasks", {"user_id": bob}))["tasks"] == []
        adopted = refused(await as_bob.call_tool("add_task", {"user_id": bob, "title": "Step", "parent_id": secret}))
        assert "parent_id" in adopted
    task = rest(server, alice, "GET", f"/tasks/{secret}").json()
    assert task["title"] == "Alice's secret" and task["completed"] is False
    assert len(listed(rest(server, alice, "GET", "/tasks"))) == 1


MALFORMED: dict[str, list[dict[str, Any]]] = {
    "add_task": [{}, {"title": 5}, {"title": "x", "priority": "urgent"}, {"title": "x", "due_at": "tomorrow"}],
    "list_tasks": [{"status": "open"}, {"limit": 0}, {"sort": "colour"}, {"cursor": "forged"}],
    "complete_task": [
        {},
        {"task_id": "not-a-uuid"},
        {"task_id": "01a25098-0000-7000-8000-000000000000", "completed": "yes"},
    ],
    "delete_task": [{}, {"task_id": 12}],
    "update_task": [{"task_id": "nope"}, {"task_id": "01a25098-0000-7000-8000-000000000000", "tags": "a,b"}],
    "move_task": [{}, {"task_id": "01a25098-0000-7000-8000-000000000000", "after": "x"}],
    "get_overview": [{"user_id": 7}],
    "list_categories": [{"user_id": None}],
    "add_category": [{}, {"name": "x", "color": "red"}],
    "batch_tasks": [{}, {"operations": []}, {"operations": [{"op": "explode"}]}, {"operations": "all"}],
}


async def test_a_malformed_call_of_every_tool_is_a_tool_error_naming_what_is_wrong(server: Server) -> None:
    assert set(MALFORMED) == ALL_TOOLS
    user = new_user()
    async with connected(server, user) as client:
        for name, calls in MALFORMED.items():
            for arguments in calls:
                text = refused(await client.call_tool(name, {"user_id": user, **arguments}))
                assert name in text or "Invalid arguments" in text or "No such" in text, (name, arguments, text)
        # The validation the REST API does, field by field.
        blank = refused(await client.call_tool("add_task", {"user_id": user, "title": "   "}))
        assert "title: must not be blank" in blank
        naive = refused(
            await client.call_tool("add_task", {"user_id": user, "title": "x", "due_at": "2026-12-01T09:00"})
        )
        assert "due_at" in naive
        rule = refused(await client.call_tool("add_task", {"user_id": user, "title": "x", "recurrence": "FREQ=HOURLY"}))
        assert "recurrence" in rule
        # And it still answers.
        assert ok(await client.call_tool("list_tasks", {"user_id": user}))["tasks"] == []


def stdio(database_url: str, token: str, workdir: Path) -> StdioServerParameters:
    environment = clean_environment(TODO_DATABASE_URL=database_url, TODO_JWT_SECRET=TEST_SECRET, TODO_TOKEN=token)
    return StdioServerParameters(command=sys.executable, args=["-m", "todo_api", "mcp"], env=environment, cwd=workdir)


async def test_todo_mcp_serves_the_tools_on_stdio_for_the_user_of_the_token(
    server: Server, database_url: str, tmp_path: Path
) -> None:
    user = new_user()
    token = bearer(user)["Authorization"].removeprefix("Bearer ")
    async with Client(stdio(database_url, token, tmp_path)) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == ALL_TOOLS
        added = ok(await client.call_tool("add_task", {"user_id": user, "title": "From the terminal"}))
        assert ok(await client.call_tool("list_tasks", {"user_id": user}))["tasks"] == [added["task"]]
        other = refused(await client.call_tool("list_tasks", {"user_id": new_user()}))
        assert "user_id is not the user this connection acts for" in other
        assert refused(await client.call_tool("complete_task", {"user_id": user}))
    # The same data the HTTP server shows.
    assert rest(server, user, "GET", f"/tasks/{added['task_id']}").json() == added["task"]


def test_todo_mcp_refuses_to_start_without_an_accepted_token(sqlite_url: str, tmp_path: Path) -> None:
    for token in ("", "not-a-token"):
        environment = clean_environment(TODO_DATABASE_URL=sqlite_url, TODO_JWT_SECRET=TEST_SECRET, TODO_TOKEN=token)
        result = subprocess.run(
            todo_command("mcp"), env=environment, cwd=tmp_path, capture_output=True, input=b"", timeout=60, check=False
        )
        assert result.returncode == 2, result.stderr
        assert b"TODO_TOKEN" in result.stderr
        assert result.stdout == b""  # nothing a client would read as a message


def test_fuzzed_calls_of_every_tool_answer_with_a_result_or_a_tool_error(server: Server, database_url: str) -> None:
    """A short run of `make fuzz`'s MCP part (scripts/fuzz_mcp.py): drawn calls of every tool, each
    answered by a result that matches the tool's output schema or by a tool error, and no crash in
    the server's log."""
    user = new_user()
    environment = {**os.environ, "TODO_FUZZ_TOKEN": bearer(user)["Authorization"].removeprefix("Bearer ")}
    command = [sys.executable, "-W", "ignore", str(FUZZER), "--url", f"{server.base_url}/mcp", "--user", user]
    run = subprocess.run(
        [*command, "--seconds", str(FUZZ_SECONDS), "--server-log", str(server.log)],
        env=environment,
        capture_output=True,
        timeout=FUZZ_SECONDS + 120,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-6000:]
    assert b"no crash" in run.stdout


def test_a_worker_loads_the_mcp_sdk_at_its_first_mcp_request_not_before(sqlite_url: str, tmp_path: Path) -> None:
    """The SDK is ~20 MB of a worker's memory: a worker that never serves an assistant does not
    load it. A process of its own: this one has loaded the SDK already."""
    script = f"""
import asyncio, sys
import httpx
from todo_adapters.auth import mint_token
from todo_api.app import create_app
from todo_api.settings import Settings

async def main():
    settings = Settings(database_url={sqlite_url!r}, jwt_secret={TEST_SECRET!r}, rate_limits="none", _env_file=None)
    app = create_app(settings)
    headers = {{"Authorization": "Bearer " + mint_token({TEST_SECRET!r}, "someone"),
               "Accept": "application/json, text/event-stream"}}
    call = {{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            served = (await http.get("/api/someone/tasks", headers=headers)).status_code
            before = "mcp" in sys.modules
            answer = await http.post("/mcp", json=call, headers=headers)
            tools = len(answer.json()["result"]["tools"]) if answer.status_code == 200 else answer.text
            print(served, before, answer.status_code, "mcp" in sys.modules, tools)

asyncio.run(main())
"""
    ran = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["200", "False", "200", "True", str(len(ALL_TOOLS))], ran.stdout
