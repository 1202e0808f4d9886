"""Exports and imports under abuse, over a real loopback connection: slow readers take no
connection the other users need, an account has one export running at a time, a slow but
steady client gets the whole document, and a large import leaves the server answering others."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.api.assertions import problem
from tests.api.test_portability_api import a_large_document, export_of, import_into
from tests.conftest import Caller, SqlStore, bearer, build_app
from todo_adapters.sqlalchemy.engine import engine_pool_usage
from todo_adapters.sqlalchemy.exports import EXPORT_CONNECTIONS
from todo_api.exports import RunningExports

#: Each bounds a time: run with the machine to itself (`make test` runs them after the rest).
pytestmark = pytest.mark.alone

#: Slow readers at once: more than the test pool's connections (5) and than the exports' share.
SLOW_READERS = 8
#: What a slow reader takes per read and how long it sleeps after each: ~200 KB/s.
READ_BYTES = 4096
READ_PAUSE = 0.02
#: The longest the server may be deaf to others while it parses and checks an import.
LOOP_STALL = 1.0


@asynccontextmanager
async def served(store: SqlStore, *, send_seconds: float = 60, **overrides: Any) -> AsyncIterator[str]:
    """The app served by uvicorn on a loopback port, on this event loop; its base URL. An
    export may take `send_seconds` to send."""
    app, container = build_app(store, **overrides)
    container.running_exports.override(RunningExports(send_seconds=send_seconds))
    probe = socket.socket()
    # Accepted connections inherit a small send buffer: what a slow client has not taken stays
    # in the server, not in the kernel (loopback buffers would otherwise hold megabytes).
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, READ_BYTES)
    probe.bind(("127.0.0.1", 0))
    config_port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=config_port, log_level="warning", lifespan="off"))
    running = asyncio.ensure_future(server.serve(sockets=[probe]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{config_port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(running, 30)


async def slow_export(base_url: str, user: str, *, stall: float = 0) -> tuple[int, dict[str, str], bytes]:
    """`GET /export` read a little at a time through a small receive window, after reading
    nothing for `stall` seconds once the headers came: its status, headers and body."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READ_BYTES)
    connection.setblocking(False)
    host, port = base_url.removeprefix("http://").split(":")
    await asyncio.get_running_loop().sock_connect(connection, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=connection)
    token = bearer(user)["Authorization"]
    writer.write(f"GET /api/{user}/export HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n\r\n".encode())
    await writer.drain()
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            received += await reader.read(READ_BYTES)
        head, body = received.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode().split("\r\n")
        headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
        length = int(headers.get("content-length", len(body)))
        await asyncio.sleep(stall)
        while len(body) < length:
            await asyncio.sleep(READ_PAUSE)
            part = await reader.read(READ_BYTES)
            if not part:
                break  # cut short
            body += part
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()


def connection_usage(store: SqlStore) -> tuple[int, int]:
    """Connections lent out and requests waiting for one, in the app's pool."""
    usage = store.pool.usage() if store.pool is not None else engine_pool_usage(store.engine)
    return usage.in_use, usage.waiting


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


async def test_slow_export_readers_never_keep_another_user_waiting_and_each_gets_the_whole_document(
    store: SqlStore,
) -> None:
    async with served(store) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        readers = [Caller(http, f"user-{uuid.uuid4().hex[:16]}") for _ in range(SLOW_READERS)]
        for reader in readers:  # ~170 KB each: many reads for a slow reader
            await import_into(reader, a_large_document(steps_per_task=1, top_level=150))
        expected = {reader.id: await export_of(reader) for reader in readers}
        other = Caller(http, f"user-{uuid.uuid4().hex[:16]}")

        exports = asyncio.gather(*(slow_export(base_url, reader.id) for reader in readers))
        usage: list[tuple[int, int]] = []
        answers: list[tuple[int, float]] = []
        while not exports.done():
            usage.append(connection_usage(store))
            started = time.monotonic()
            response = await other.request("POST", "/tasks", json={"title": "Still served"})
            answers.append((response.status_code, time.monotonic() - started))
            await asyncio.sleep(0.005)
        results = await exports

    assert {status for status, _ in answers} == {201}, answers
    assert len(answers) > 10  # the other user was served all along
    # Exports read with their share of the connections; nobody ever waited for one.
    assert max(waiting for _, waiting in usage) == 0
    assert max(in_use for in_use, _ in usage) <= EXPORT_CONNECTIONS + 1, usage
    assert max(duration for _, duration in answers) < 1.0, answers
    for reader, (status, headers, body) in zip(readers, results, strict=True):
        assert status == 200
        assert len(body) == int(headers["content-length"])
        document = json.loads(body)
        assert {**document, "exported_at": None} == {**expected[reader.id], "exported_at": None}


async def test_a_second_export_of_an_account_while_one_runs_is_429_with_retry_after(store: SqlStore) -> None:
    async with served(store) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        user = Caller(http, f"user-{uuid.uuid4().hex[:16]}")
        await import_into(user, a_large_document(steps_per_task=1, top_level=250))  # ~1.5 s to read
        first = asyncio.ensure_future(slow_export(base_url, user.id))
        await asyncio.sleep(0.5)  # its document is read and being sent
        assert not first.done()
        second = await user.request("GET", "/export")
        assert second.status_code == 429, second.status_code
        body = problem(second, 429)
        assert body["type"] == "/problems/export-running"
        assert int(second.headers["retry-after"]) > 0
        status, _, _ = await first
        assert status == 200
        assert (await user.request("GET", "/export")).status_code == 200  # once done, the next one runs


async def test_a_large_import_keeps_the_server_answering_others_meanwhile(store: SqlStore, tmp_path: Path) -> None:
    """Parsing and checking a large document takes a fraction of a second of CPU per thousand
    tasks: done in a worker thread, the other requests are answered meanwhile. (The import is
    sent by another process, so that sending it costs the server's process nothing.)"""
    document = tmp_path / "document.json"
    document.write_bytes(json.dumps(a_large_document(steps_per_task=1, top_level=8000)).encode())  # 16,000 tasks
    async with served(store) as base_url, httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        # FastAPI builds what a route needs on its first request: not what is measured here.
        await import_into(Caller(http, f"user-{uuid.uuid4().hex[:16]}"), a_large_document(1, 1))
        assert (await http.get("/healthz")).status_code == 200
        importer = f"user-{uuid.uuid4().hex[:16]}"
        send = (
            "import httpx, pathlib, sys\n"
            f"response = httpx.post({base_url!r} + '/api/{importer}/import', timeout=60, "
            f"content=pathlib.Path({str(document)!r}).read_bytes(), "
            f"headers={{**{bearer(importer)!r}, 'Content-Type': 'application/json'}})\n"
            "print(response.status_code)"
        )
        importing = await asyncio.create_subprocess_exec(sys.executable, "-c", send, stdout=asyncio.subprocess.PIPE)
        finished = asyncio.ensure_future(importing.communicate())
        latencies: list[float] = []
        while not finished.done():
            started = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.005)
        assert (await finished)[0] == b"201\n"

    assert len(latencies) > 5
    assert max(latencies) < LOOP_STALL, sorted(latencies)[-5:]


async def test_an_export_that_takes_longer_than_its_bound_to_send_is_cut_and_frees_the_account(
    store: SqlStore,
) -> None:
    async with served(store, send_seconds=0.5) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        user = Caller(http, f"user-{uuid.uuid4().hex[:16]}")
        # ~4.4 MB: more than the kernel may buffer on loopback (a send buffer grows to 4 MB), so
        # the server cannot hand it all over within the bound however fast the buffers take it.
        await import_into(user, a_large_document(steps_per_task=1, top_level=2700))
        status, headers, body = await slow_export(base_url, user.id, stall=1.5)
        assert status == 200
        assert len(body) < int(headers["content-length"])  # closed short: the client sees it cut
        # And the account is free: another export starts (429 while one runs). Its status is all
        # that is read: sent whole, it too would take longer than the bound.
        async with http.stream("GET", f"/api/{user.id}/export", headers=user.headers) as again:
            assert again.status_code == 200
