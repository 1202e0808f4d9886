"""Event streams on the real `todo serve` with two workers on PostgreSQL: a change made through
either worker reaches a stream held by the other, and SIGTERM ends open streams promptly.

Which worker serves a connection is read from /proc: the worker process that holds the
server's end of it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import Caller
from tests.event_streams import EventStream, changed_token, latest_token, open_events
from tests.system.test_persistence import Server, postgres_deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

USER = "events:user"
#: Connections wanted on each worker, and the most opened to find them (the kernel hands
#: each to whichever worker accepts first).
PER_WORKER = 2
MOST_CONNECTIONS = 60
CHANGES_PER_CONNECTION = 2
#: How soon after SIGTERM open streams must end, and the server exit.
STREAMS_END_SECONDS = 3.0
EXIT_SECONDS = 5.0


@pytest.fixture
def two_workers(postgres_server_url: str, tmp_path: Path) -> Iterator[Server]:
    """`todo serve` with two workers on a migrated database of the test's own."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    with postgres_deployment(postgres_server_url, workdir) as deployment:
        server = deployment.start(run=1, TODO_WORKERS="2")
        try:
            server.wait_until_healthy()
            yield server
        finally:
            server.stop()


def serving_worker(server: Server, response: httpx.Response) -> int:
    """The process id of the worker that holds the server's end of `response`'s connection."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    server_port = int(server.base_url.rsplit(":", 1)[1])
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            sockets.add(f"socket:[{inode}]")
    for pid in _descendants(server.process.pid):
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) in sockets:
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no worker of {server.process.pid} holds the connection from port {client_port}")


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 100:
        parent = pending.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        found += map(int, children)
        pending += map(int, children)
    return found


@pytest.fixture
async def connections(two_workers: Server) -> AsyncIterator[dict[int, list[Caller]]]:
    """Callers, each on one kept-alive connection of its own, by the worker serving it."""
    by_worker: dict[int, list[Caller]] = {}
    async with AsyncExitStack() as stack:
        for _ in range(MOST_CONNECTIONS):
            if len(by_worker) == 2 and min(map(len, by_worker.values())) >= PER_WORKER:
                break
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=two_workers.base_url, timeout=10.0, limits=httpx.Limits(max_connections=1))
            )
            caller = Caller(client, USER)
            answer = await caller.request("GET", "/tasks", params={"limit": 1})
            assert answer.status_code == 200, answer.text
            by_worker.setdefault(serving_worker(two_workers, answer), []).append(caller)
        yield by_worker


async def test_a_change_through_either_worker_is_announced_on_a_stream_of_the_other(
    two_workers: Server, connections: dict[int, list[Caller]]
) -> None:
    assert len(connections) == 2, f"all {MOST_CONNECTIONS} connections went to one worker"
    async with (
        httpx.AsyncClient(base_url=two_workers.base_url, timeout=10.0) as client,
        open_events(client, f"/api/{USER}/events", Caller(client, USER).headers) as stream,
    ):
        assert stream.response.status_code == 200
        stream_worker = serving_worker(two_workers, stream.response)
        other = next(callers for worker, callers in connections.items() if worker != stream_worker)
        same = connections[stream_worker]
        since = None
        for caller in [*other, *same] * CHANGES_PER_CONNECTION:
            await caller.create_task(title=f"made through {caller.client.base_url}")
            expected = await latest_token(caller, since)
            assert await changed_token(stream) == expected
            since = expected


async def test_sigterm_ends_open_streams_and_the_server_exits_promptly(two_workers: Server) -> None:
    async with AsyncExitStack() as stack:
        streams: list[EventStream] = []
        workers: set[int] = set()
        for _ in range(MOST_CONNECTIONS):
            if len(workers) == 2 and len(streams) >= 2 * PER_WORKER:
                break
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=two_workers.base_url, timeout=10.0))
            stream = await stack.enter_async_context(
                open_events(client, f"/api/{USER}/events", Caller(client, USER).headers)
            )
            assert stream.response.status_code == 200
            streams.append(stream)
            workers.add(serving_worker(two_workers, stream.response))
        assert len(workers) == 2, f"all {len(streams)} streams went to one worker"

        two_workers.process.send_signal(signal.SIGTERM)
        ends = await asyncio.gather(*(stream.next_event(STREAMS_END_SECONDS) for stream in streams))
        assert ends == [None] * len(streams)
        try:
            status = await asyncio.to_thread(two_workers.process.wait, EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within {EXIT_SECONDS} s of SIGTERM:\n{two_workers.output()}")
    assert status in {0, -signal.SIGTERM}, two_workers.output()
