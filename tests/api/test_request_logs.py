"""Request ids and the log line per request, over HTTP against the real app, logged through the
logging configuration a server process applies (todo_api/logs.py)."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_SECRET, Caller, settings_for
from todo_adapters.auth import mint_token
from todo_api.logs import logging_config
from todo_api.settings import Settings

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@contextlib.contextmanager
def server_logging(settings: Settings) -> Iterator[io.StringIO]:
    """The logging of a server process with these settings, writing into the returned buffer;
    the test process's logging restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(logging_config(settings))
    # The test's own HTTP client logs each request it makes (URL and all): not the server's lines.
    client_log = logging.getLogger("httpx")
    client_level = client_log.level
    client_log.setLevel(logging.WARNING)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        client_log.setLevel(client_level)


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON objects logged so far, one per line (the format outside development mode)."""
    with server_logging(settings_for("sqlite://")) as buffer:
        yield lambda: [orjson.loads(line) for line in buffer.getvalue().splitlines()]


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "todo.access"]


async def test_a_request_id_the_client_sends_is_echoed(alice: Caller) -> None:
    for given in ("3f2a9c1e-7b4d-4e8f-9a0b-1c2d3e4f5a6b", "Root=1-67891233-abcdef012345678912345678", "a"):
        response = await alice.request("GET", "/tasks", headers={"X-Request-ID": given})
        assert response.headers["x-request-id"] == given


async def test_a_request_without_an_id_gets_a_new_one_each_time(client: httpx.AsyncClient) -> None:
    ids = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert all(GENERATED_ID.fullmatch(found) for found in ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    "unsafe",
    ["x" * 129, "two words", 'quote"d', "semi;colon", "new\\nline", "<script>", "ünïcode"],
)
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": unsafe.encode("utf-8")})
    assert response.status_code == 200
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_an_error_answer_carries_the_request_id_too(alice: Caller) -> None:
    response = await alice.client.get(alice.url("/tasks"), headers={"X-Request-ID": "trace-401"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "trace-401"


async def test_each_request_is_logged_in_one_json_line(
    alice: Caller, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    task = await alice.create_task(title="Water the plants")
    response = await alice.request("GET", f"/tasks/{task['id']}", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 200

    create, read = request_lines(json_lines())
    assert read["request_id"] == "trace-42"
    assert create["request_id"] != read["request_id"]
    assert {key: read[key] for key in ("level", "method", "route", "status")} == {
        "level": "INFO",
        "method": "GET",
        "route": "/api/{user_id}/tasks/{task_id}",
        "status": 200,
    }
    assert create["route"] == "/api/{user_id}/tasks"
    assert create["status"] == 201
    assert 0 < read["duration_ms"] < 60_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", read["time"])


async def test_the_log_names_users_by_a_hash_and_never_shows_a_token(
    alice: Caller, bob: Caller, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    await alice.create_task(title="Water the plants")
    assert (await alice.request("GET", "/tasks")).status_code == 200
    assert (await bob.request("GET", "/tasks")).status_code == 200
    trespass = await alice.client.get(bob.url("/tasks"), headers=alice.headers)
    assert trespass.status_code == 403

    lines = json_lines()
    logged = orjson.dumps(lines).decode()
    for secret in (alice.id, bob.id, *alice.headers.values(), *bob.headers.values()):
        assert secret.removeprefix("Bearer ") not in logged
    created, listed, bobs, refused = (line["user"] for line in request_lines(lines))
    assert re.fullmatch(r"[0-9a-f]{16}", created)
    assert listed == created  # one user, one hash: a user's requests can be followed
    assert bobs != created
    assert refused is None  # the request was authenticated as nobody


async def test_the_log_line_of_a_refused_request_says_why(
    alice: Caller, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    expired = mint_token(TEST_SECRET, alice.id, now=time.time() - 7200)
    assert (await alice.client.get(alice.url("/tasks"))).status_code == 401
    assert (
        await alice.client.get(alice.url("/tasks"), headers={"Authorization": f"Bearer {expired}"})
    ).status_code == 401
    assert (await alice.client.get(alice.url("/tasks"), headers={"Authorization": "Bearer x.y.z"})).status_code == 401
    assert (await alice.request("GET", "/tasks")).status_code == 200

    lines = request_lines(json_lines())
    assert [line.get("auth_failure") for line in lines] == ["missing", "expired", "malformed", None]
    assert lines[1]["message"].endswith("(expired)")
    assert expired not in orjson.dumps(lines).decode()


async def test_every_line_logged_while_a_request_runs_carries_its_id(
    app: FastAPI, client: httpx.AsyncClient, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    async def logs_on_its_way() -> dict[str, str]:
        logging.getLogger("todo.somewhere").warning("something worth knowing")
        return {}

    app.add_api_route("/logs-on-its-way", logs_on_its_way)
    response = await client.get("/logs-on-its-way", headers={"X-Request-ID": "trace-7"})
    assert response.status_code == 200

    inside, request = json_lines()
    assert (inside["logger"], inside["message"], inside["request_id"]) == (
        "todo.somewhere",
        "something worth knowing",
        "trace-7",
    )
    assert (request["logger"], request["request_id"]) == ("todo.access", "trace-7")
    logging.getLogger("todo.somewhere").warning("after the request")
    assert json_lines()[-1]["request_id"] is None


async def test_development_mode_logs_text_a_person_reads(alice: Caller) -> None:
    with server_logging(Settings(dev_mode=True, _env_file=None)) as buffer:  # type: ignore[call-arg]
        response = await alice.request("GET", "/tasks", headers={"X-Request-ID": "trace-9"})
    assert response.status_code == 200
    (line,) = buffer.getvalue().splitlines()
    assert re.fullmatch(r"\S+ \S+ INFO todo.access \[trace-9\] GET /api/\{user_id\}/tasks 200 \d+\.\d ms", line)


async def test_access_log_off_logs_no_line_per_request(
    sqlite_store: Any, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    from tests.conftest import api_client

    async with api_client(sqlite_store, access_log=False) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert request_lines(json_lines()) == []


async def test_the_log_level_setting_filters(alice: Caller) -> None:
    with server_logging(settings_for("sqlite://", log_level="WARNING")) as buffer:
        assert (await alice.request("GET", "/tasks")).status_code == 200
    assert buffer.getvalue() == ""
