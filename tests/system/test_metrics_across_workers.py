"""/metrics on the real `todo serve` with two workers on PostgreSQL: a scrape, whichever worker
answers it, counts the requests of both; a killed worker's gauges stop counting once its
replacement starts; the directory the workers share their values in is removed at exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import Caller
from tests.event_streams import open_events
from tests.scrape import samples, value
from tests.system.conftest import descendants, serving_worker
from tests.system.test_persistence import Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

USER = "metrics:user"
#: Requests wanted from each worker, and the most connections opened to get them (the kernel
#: hands each to whichever worker accepts first).
PER_WORKER = 2
MOST_CONNECTIONS = 60
SCRAPES = 6
#: How long uvicorn may take to replace a killed worker, and the new one to start.
REPLACED_SECONDS = 20.0


def fresh_client(server: Server) -> httpx.AsyncClient:
    """A client on a connection of its own: either worker may get it."""
    return httpx.AsyncClient(base_url=server.base_url, timeout=10.0, limits=httpx.Limits(max_connections=1))


async def test_a_scrape_counts_the_requests_of_every_worker(two_workers: Server) -> None:
    served: Counter[int] = Counter()
    async with AsyncExitStack() as stack:
        for _ in range(MOST_CONNECTIONS):
            if len(served) == 2 and min(served.values()) >= PER_WORKER:
                break
            client = await stack.enter_async_context(fresh_client(two_workers))
            answer = await Caller(client, USER).request("GET", "/tasks", params={"limit": 1})
            assert answer.status_code == 200, answer.text
            served[serving_worker(two_workers, answer)] += 1
    assert len(served) == 2, f"all {MOST_CONNECTIONS} connections went to one worker"

    for _ in range(SCRAPES):
        async with fresh_client(two_workers) as client:
            scrape = await client.get("/metrics")
        assert scrape.status_code == 200
        counted = value(
            samples(scrape.text), "todo_http_requests_total", method="GET", route="/api/{user_id}/tasks", status="200"
        )
        assert counted == sum(served.values()), f"served {dict(served)} by worker, a scrape counted {counted}"


async def test_a_killed_workers_streams_stop_counting_once_it_is_replaced(two_workers: Server) -> None:
    # The stream's connection dies with its worker: the client sees the body cut short.
    async with fresh_client(two_workers) as client, contextlib.AsyncExitStack() as cut_short:
        cut_short.enter_context(contextlib.suppress(httpx.RemoteProtocolError))
        async with open_events(client, f"/api/{USER}/events", Caller(client, USER).headers) as stream:
            assert stream.response.status_code == 200
            worker = serving_worker(two_workers, stream.response)
            async with fresh_client(two_workers) as scraper:
                assert value(samples((await scraper.get("/metrics")).text), "todo_event_streams_open") == 1
            os.kill(worker, signal.SIGKILL)

    deadline = asyncio.get_running_loop().time() + REPLACED_SECONDS
    while True:
        workers = descendants(two_workers.process.pid)
        async with fresh_client(two_workers) as scraper:
            open_streams = value(samples((await scraper.get("/metrics")).text), "todo_event_streams_open")
        if open_streams == 0:
            break
        assert asyncio.get_running_loop().time() < deadline, (
            f"{open_streams} streams still counted {REPLACED_SECONDS} s after worker {worker} was killed "
            f"(processes now {workers})"
        )
        await asyncio.sleep(0.2)
    assert worker not in descendants(two_workers.process.pid)


def test_the_workers_shared_directory_is_removed_when_the_server_stops(two_workers: Server, tmp_path: Path) -> None:
    (directory,) = (tmp_path / "tmp").glob("todo-metrics-*")
    assert any(directory.glob("*.db")), "the workers write their values there"
    assert two_workers.stop() in {0, -signal.SIGTERM}
    assert not directory.exists()
