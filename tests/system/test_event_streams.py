"""Event streams on the real `todo serve` with two workers on PostgreSQL: a change made through
either worker reaches a stream held by the other, and SIGTERM ends open streams promptly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.conftest import Caller
from tests.event_streams import EventStream, changed_token, latest_token, open_events
from tests.system.conftest import serving_worker
from tests.system.test_persistence import Server

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
        for number in range(MOST_CONNECTIONS):
            if len(workers) == 2 and len(streams) >= 2 * PER_WORKER:
                break
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=two_workers.base_url, timeout=10.0))
            # A user each: one user's streams on one process are capped (TODO_MAX_EVENT_STREAMS,
            # 10), and the kernel may hand that many to one worker before the other takes any.
            user = f"{USER}-{number}"
            stream = await stack.enter_async_context(
                open_events(client, f"/api/{user}/events", Caller(client, user).headers)
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
