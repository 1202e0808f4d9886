"""The real `todo` process while its PostgreSQL restarts or goes away: every acknowledged create is
kept, every failure is a quick 503 with Retry-After, and the server recovers on its own.

The database is a cluster of this module's own (initdb into a temporary directory), so that the
tests may stop and restart it; it is removed afterwards whatever happens. Its binaries come from
/usr/lib/postgresql/*/bin or PATH; without them the tests skip, or fail under
TODO_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import TEST_SECRET, _postgres_unavailable, bearer
from tests.ports import free_port
from tests.system.test_persistence import Deployment, Server, clean_environment
from todo_adapters.sqlalchemy.change_listener import APPLICATION_NAME

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # bounds times: run with the machine to itself

PG_CTL_SECONDS = 30  # pg_ctl's own wait for the server to start or stop
COMMAND_SECONDS = 60.0  # any command of the cluster's, killed past this
#: The server's bound on a request's database work (TODO_DB_TIMEOUT_SECONDS in these tests).
DB_TIMEOUT_SECONDS = 2.0
#: How late past that bound a 503 may come on this busy machine (without the bound: 10 s).
LATENESS_SECONDS = 2.0
#: The clients' patience: past the server's bound, so a request that hangs is seen as one.
CLIENT_TIMEOUT_SECONDS = DB_TIMEOUT_SECONDS + LATENESS_SECONDS + 1.0
#: How soon after the database is back requests must succeed again.
RECOVERY_SECONDS = 3.0
#: How long the load goes on once requests succeed again: enough to see them keep succeeding.
STEADY_SECONDS = 1.0
CLIENTS = 4
MAX_REQUESTS = 4000  # all clients together; the load also ends on time
PAUSE_SECONDS = 0.01  # between one client's requests, so that the load leaves room for PostgreSQL
POOL_SIZE = 4
SERVER_SETTINGS = {"TODO_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT_SECONDS), "TODO_DB_POOL_SIZE": str(POOL_SIZE)}


def _postgres_binaries() -> Path | None:
    """The directory of the newest initdb and pg_ctl found, if any."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if os.access(Path(directory) / "initdb", os.X_OK) and os.access(Path(directory) / "pg_ctl", os.X_OK):
            return Path(directory)
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _version(directory: str) -> tuple[int, ...]:
    name = Path(directory).parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of the tests' own, on a free loopback port, trusting local users."""

    binaries: Path
    directory: Path
    port: int
    #: Commands run as the cluster's owner: PostgreSQL refuses to run as root.
    as_owner: tuple[str, ...]

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *arguments: str) -> None:
        result = subprocess.run(
            [*self.as_owner, str(self.binaries / program), *arguments],
            capture_output=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            log = self.directory / "postgres.log"
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{program} {arguments} failed: {result.stderr.decode(errors='replace')}\n{server_log}")

    def ctl(self, *arguments: str) -> None:
        """pg_ctl, waiting (bounded) until the server has started or stopped."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        log = str(self.directory / "postgres.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", str(PG_CTL_SECONDS), *arguments)

    def stop_for_good(self) -> None:
        """Stop the server if it runs, and kill it if it will not stop."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self.ctl("stop", "-m", "immediate")
        except (pytest.fail.Exception, subprocess.TimeoutExpired):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def connect(self, database: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and removed on the way out, even after a failure."""
    binaries = _postgres_binaries()
    if binaries is None:
        _postgres_unavailable("no initdb and pg_ctl in /usr/lib/postgresql/*/bin or on PATH")
    as_owner: tuple[str, ...] = ()
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _postgres_unavailable("running as root, and there is no `postgres` user to run a cluster as")
        as_owner = ("runuser", "-u", "postgres", "--")
    directory = Path(tempfile.mkdtemp(prefix="todo-faults-"))
    try:
        if owner is not None:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster = Cluster(binaries, directory, free_port(), as_owner)
        cluster.run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        cluster.ctl("start")
        try:
            yield cluster
        finally:
            cluster.stop_for_good()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with private_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def deployment(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A migrated database on the private cluster, and the settings that serve it."""
    with cluster.connect("postgres") as admin:
        admin.execute("CREATE DATABASE todo")
    deployed = Deployment(
        clean_environment(TODO_DATABASE_URL=cluster.url("todo"), TODO_JWT_SECRET=TEST_SECRET),
        tmp_path_factory.mktemp("faults"),
    )
    deployed.migrate()
    return deployed


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[Server]:
    """One `todo serve` for the module's tests (each acts as a user of its own); each test leaves
    the database running."""
    started = deployment.start(run=1, **SERVER_SETTINGS)
    try:
        started.wait_until_healthy()
        yield started
    finally:
        started.stop()


@dataclass(frozen=True)
class Outcome:
    """One create as its client saw it."""

    sent_at: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer in time, or the connection failed
    error: str = ""
    task_id: str | None = None
    retry_after: str | None = None
    content_type: str = ""

    @property
    def is_unavailable_problem(self) -> bool:
        """A 503 as the API promises it: problem+json, with a Retry-After."""
        return self.status == 503 and self.content_type == "application/problem+json" and self.retry_after is not None


class CreateLoad:
    """A few clients creating tasks, one request at a time each, until told to stop (or out of
    requests or time)."""

    def __init__(self, server: Server, user: str, *, max_seconds: float) -> None:
        self.server = server
        self.user = user
        self.outcomes: list[Outcome] = []
        self._stop = asyncio.Event()
        self._deadline = time.monotonic() + max_seconds

    async def __aenter__(self) -> CreateLoad:
        self._clients = [asyncio.create_task(self._client(n)) for n in range(CLIENTS)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._clients)

    def acknowledged(self) -> set[str]:
        return {outcome.task_id for outcome in self.outcomes if outcome.status == 201 and outcome.task_id}

    async def wait_for_successes(self, count: int, *, after: float = 0.0) -> None:
        while sum(1 for o in self.outcomes if o.status == 201 and o.sent_at >= after) < count:
            assert time.monotonic() < self._deadline, f"fewer than {count} creates succeeded: {self._summary()}"
            await asyncio.sleep(0.05)

    def _summary(self) -> str:
        return str(sorted({(o.status, o.error) for o in self.outcomes}, key=str))

    async def _client(self, number: int) -> None:
        headers = bearer(self.user)
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as http:
            for request in range(MAX_REQUESTS // CLIENTS):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    return
                self.outcomes.append(await self._create(http, headers, f"client {number}, task {request}"))
                await asyncio.sleep(PAUSE_SECONDS)

    async def _create(self, http: httpx.AsyncClient, headers: dict[str, str], title: str) -> Outcome:
        sent_at = time.monotonic()
        try:
            response = await http.post(f"/api/{self.user}/tasks", json={"title": title}, headers=headers)
        except httpx.HTTPError as error:
            return Outcome(sent_at, time.monotonic() - sent_at, None, error=type(error).__name__)
        return Outcome(
            sent_at,
            time.monotonic() - sent_at,
            response.status_code,
            task_id=response.json()["id"] if response.status_code == 201 else None,
            retry_after=response.headers.get("retry-after"),
            content_type=response.headers.get("content-type", ""),
        )


def stored_ids(cluster: Cluster, user: str) -> set[str]:
    with cluster.connect("todo") as connection:
        return {str(row[0]) for row in connection.execute("SELECT id FROM tasks WHERE user_id = %s", (user,))}


def assert_failures_are_prompt_503s(load: CreateLoad) -> None:
    failures = [outcome for outcome in load.outcomes if outcome.status != 201]
    wrong = [outcome for outcome in failures if not outcome.is_unavailable_problem]
    assert not wrong, f"{len(wrong)} requests failed otherwise than with a 503 problem, e.g. {wrong[:3]}"
    slow = [outcome for outcome in failures if outcome.seconds > DB_TIMEOUT_SECONDS + LATENESS_SECONDS]
    assert not slow, f"{len(slow)} failures took longer than the bound of {DB_TIMEOUT_SECONDS} s, e.g. {slow[:3]}"


def assert_recovered(load: CreateLoad, back_at: float) -> None:
    """Requests succeeded again soon after the database was back, and kept succeeding."""
    successes = [outcome for outcome in load.outcomes if outcome.status == 201 and outcome.sent_at >= back_at]
    recovered_at = min(outcome.sent_at + outcome.seconds for outcome in successes)
    assert recovered_at - back_at < RECOVERY_SECONDS, f"the first success came {recovered_at - back_at:.1f} s after"
    later = [outcome for outcome in load.outcomes if outcome.sent_at >= recovered_at]
    assert len(later) >= CLIENTS, "too few requests were made after the recovery"
    assert all(outcome.status == 201 for outcome in later), f"failing again after the recovery: {later[:3]}"


async def test_acknowledged_creates_survive_a_database_restart_under_load(cluster: Cluster, server: Server) -> None:
    user = "restart-user"
    async with CreateLoad(server, user, max_seconds=30.0) as load:
        await load.wait_for_successes(20)
        await asyncio.to_thread(cluster.ctl, "restart", "-m", "fast")
        back_at = time.monotonic()
        await load.wait_for_successes(1, after=back_at)
        await asyncio.sleep(STEADY_SECONDS)

    assert load.acknowledged() <= stored_ids(cluster, user)
    assert_failures_are_prompt_503s(load)
    assert_recovered(load, back_at)


async def test_while_the_database_is_down_requests_fail_fast_and_succeed_again_when_it_returns(
    cluster: Cluster, server: Server
) -> None:
    user = "outage-user"
    async with CreateLoad(server, user, max_seconds=45.0) as load:
        await load.wait_for_successes(20)
        await asyncio.to_thread(cluster.ctl, "stop", "-m", "fast")
        down_at = time.monotonic()
        try:
            await asyncio.sleep(10.0)
        finally:
            await asyncio.to_thread(cluster.ctl, "start")
        back_at = time.monotonic()
        await load.wait_for_successes(1, after=back_at)
        await asyncio.sleep(STEADY_SECONDS)

    # Those sent early enough to be answered before the database was back.
    during = [outcome for outcome in load.outcomes if down_at <= outcome.sent_at < back_at - CLIENT_TIMEOUT_SECONDS]
    assert len(during) >= CLIENTS * 2, "too few requests were made while the database was down"
    assert all(outcome.is_unavailable_problem for outcome in during), during
    assert load.acknowledged() <= stored_ids(cluster, user)
    assert_failures_are_prompt_503s(load)
    assert_recovered(load, back_at)


def test_after_a_restart_a_quiet_server_fails_one_request_not_one_per_pooled_connection(
    cluster: Cluster, server: Server
) -> None:
    user = "quiet-user"
    assert create(server, user).status_code == 201
    wait_for_idle_pool(cluster)
    cluster.ctl("restart", "-m", "fast")
    statuses = [create(server, user).status_code for _ in range(POOL_SIZE + 2)]
    # The first use of a dead connection finds the restart; that may be this request or the
    # server's own background work (the webhook loop's next-due read) just before it.
    assert statuses in ([503] + [201] * (POOL_SIZE + 1), [201] * (POOL_SIZE + 2)), statuses


def test_a_statement_that_cannot_finish_in_time_gets_a_503_not_a_hang(cluster: Cluster, server: Server) -> None:
    user = "blocked-user"
    with cluster.connect("todo") as blocker:
        with blocker.transaction():
            blocker.execute("LOCK TABLE tasks IN SHARE MODE")  # every insert waits for it
            started = time.monotonic()
            blocked = create(server, user)
            took = time.monotonic() - started
        after = create(server, user)
    assert blocked.status_code == 503, blocked.text
    assert blocked.headers["content-type"] == "application/problem+json"
    assert "retry-after" in blocked.headers
    assert took < DB_TIMEOUT_SECONDS + LATENESS_SECONDS
    assert after.status_code == 201, after.text


def create(server: Server, user: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/{user}/tasks",
        json={"title": "A task"},
        headers=bearer(user),
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def wait_for_idle_pool(cluster: Cluster) -> None:
    """Until all the server's pooled connections are open and idle (it opens them in the background)."""
    deadline = time.monotonic() + 10.0
    with cluster.connect("postgres") as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'todo' AND state = 'idle' "
                f"AND application_name <> '{APPLICATION_NAME}'"  # the pool's, not the event listener
            ).fetchone()
            if row is not None and row[0] == POOL_SIZE:
                return
            time.sleep(0.05)
    pytest.fail(f"the server did not have {POOL_SIZE} idle connections within 10 s")
