"""The real `todo` process on SIGTERM: requests in flight finish and their writes commit, new
connections are refused, and the process exits within TODO_SHUTDOWN_GRACE_SECONDS.

Requests are held in flight deterministically: a test transaction locks the tasks table, so every
create waits inside PostgreSQL (each on a pooled connection of its own) until the test lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import bearer
from tests.system.test_persistence import Deployment, Server, postgres_deployment

pytestmark = pytest.mark.slow

IN_FLIGHT = 8
#: How long past the grace period the process may take to exit (this machine is busy).
EXIT_MARGIN_SECONDS = 4.0
WAIT_SECONDS = 15.0  # for the creates to reach the lock
CLIENT_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def deployment(postgres_server_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with postgres_deployment(postgres_server_url, tmp_path) as deployment:
        yield deployment


def connect(deployment: Deployment) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(deployment.environment["TODO_DATABASE_URL"]).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def tasks_locked(deployment: Deployment) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Inserts into the tasks table wait until the block ends."""
    with connect(deployment) as blocker, blocker.transaction():
        blocker.execute("LOCK TABLE tasks IN SHARE MODE")
        yield blocker


async def wait_for_creates_at_the_lock(deployment: Deployment, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    with connect(deployment) as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] == count:
                return
            await asyncio.sleep(0.05)
    pytest.fail(f"{count} creates did not reach the lock within {WAIT_SECONDS} s")


def stored_ids(deployment: Deployment, user: str) -> set[str]:
    """The ids of the tasks of the users `creates_in_flight` made for `user`."""
    with connect(deployment) as connection:
        found = connection.execute("SELECT id FROM tasks WHERE user_id LIKE %s", (f"{user}-%",))
        return {str(row[0]) for row in found}


def creates_in_flight(http: httpx.AsyncClient, user: str) -> list[asyncio.Task[httpx.Response | str]]:
    """`IN_FLIGHT` creates, sent at once, each of a user of its own (`user-0`, `user-1`, …): one
    user's writes take turns, and one that waits a second for the one before gets 429 user-busy.
    Each ends in a response or the name of the transport error."""

    async def create(n: int) -> httpx.Response | str:
        owner = f"{user}-{n}"
        try:
            return await http.post(f"/api/{owner}/tasks", json={"title": f"Task {n}"}, headers=bearer(owner))
        except httpx.TransportError as error:
            return type(error).__name__

    return [asyncio.create_task(create(n)) for n in range(IN_FLIGHT)]


def served(deployment: Deployment, grace_seconds: int, db_timeout_seconds: int) -> Server:
    """A server with a pooled connection for each create in flight."""
    return deployment.start(
        run=1,
        TODO_DB_POOL_SIZE=str(IN_FLIGHT),
        TODO_DB_TIMEOUT_SECONDS=str(db_timeout_seconds),
        TODO_SHUTDOWN_GRACE_SECONDS=str(grace_seconds),
    )


async def exit_status(server: Server, within: float) -> int:
    try:
        return await asyncio.to_thread(server.process.wait, within)
    except TimeoutError:
        pytest.fail(f"the server was still running {within} s after SIGTERM:\n{server.output()}")


async def test_on_sigterm_requests_in_flight_finish_and_their_writes_commit(deployment: Deployment) -> None:
    user, grace = "shutdown-user", 10
    server = served(deployment, grace, db_timeout_seconds=grace)
    try:
        server.wait_until_healthy()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as http:
            with tasks_locked(deployment):
                requests = creates_in_flight(http, user)
                await wait_for_creates_at_the_lock(deployment, IN_FLIGHT)
                server.process.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
                await asyncio.sleep(1.0)
                still_running = server.process.poll() is None
                with pytest.raises(httpx.ConnectError):  # a new connection is refused, not served
                    httpx.get(f"{server.base_url}/healthz", timeout=5.0)
            responses = await asyncio.gather(*requests)
        status = await exit_status(server, within=grace + EXIT_MARGIN_SECONDS)
        took = time.monotonic() - signalled_at
    finally:
        server.stop()

    assert still_running, "the server exited with requests in flight"
    assert [getattr(r, "status_code", r) for r in responses] == [201] * IN_FLIGHT
    assert {r.json()["id"] for r in responses if isinstance(r, httpx.Response)} == stored_ids(deployment, user)
    # Uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert status in {0, -signal.SIGTERM}, server.output()
    assert took < grace, "the server waited out its grace period though every request had finished"


async def test_past_the_grace_period_the_server_exits_and_drops_the_requests_still_running(
    deployment: Deployment,
) -> None:
    user, grace = "cut-off-user", 2
    server = served(deployment, grace, db_timeout_seconds=60)  # the requests would wait a minute
    try:
        server.wait_until_healthy()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as http:
            with tasks_locked(deployment):
                requests = creates_in_flight(http, user)
                await wait_for_creates_at_the_lock(deployment, IN_FLIGHT)
                server.process.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
                status = await exit_status(server, within=grace + EXIT_MARGIN_SECONDS)
                took = time.monotonic() - signalled_at
            responses = await asyncio.gather(*requests)
    finally:
        server.stop()

    assert took >= grace, "the server did not give the requests in flight their grace period"
    assert status in {0, -signal.SIGTERM}, server.output()
    # Dropped: no answer (uvicorn may send its plain 500 to one not yet answering). Their
    # writes may still land: the COMMIT had been sent with the insert waiting for the lock.
    assert all(getattr(r, "status_code", 500) == 500 for r in responses), responses
