"""The real `todo` process: what it stores survives a restart, and it refuses to start unconfigured.

Each server runs in a temporary directory (so no `.env` is read), with an environment cleared of
every TODO_ variable except those the test sets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRET, bearer
from tests.migrations.test_schema import fresh_postgres_database
from tests.ports import free_port

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 20.0
SHUTDOWN_SECONDS = 10.0
MIGRATE_SECONDS = 60.0
REFUSAL_SECONDS = 10.0
USER = "persistence-user"


def todo_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "todo_api", *arguments]


def clean_environment(**todo_settings: str) -> dict[str, str]:
    """This process's environment without any TODO_ variable, plus the given ones."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TODO_")}
    return environment | todo_settings


@dataclass
class Server:
    """One running `todo serve` process and where its output goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode} while starting:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the server did not answer /healthz within {STARTUP_SECONDS} s:\n{self.output()}")

    def stop(self) -> int | None:
        """Ask the server to stop (SIGTERM); kill it if it has not within the bound. Returns the
        exit status if it stopped when asked, None if it had to be killed."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=SHUTDOWN_SECONDS)
            return None


@dataclass
class Deployment:
    """How to run `todo` against one database: its environment and working directory."""

    environment: dict[str, str]
    workdir: Path

    def migrate(self) -> None:
        result = subprocess.run(
            todo_command("migrate"),
            env=self.environment,
            cwd=self.workdir,
            capture_output=True,
            timeout=MIGRATE_SECONDS,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")

    def start(self, run: int, **settings: str) -> Server:
        port = free_port()
        log = self.workdir / f"server-{run}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                todo_command("serve"),
                # No rate limits unless a test sets them: these tests (the fuzzer above all) send
                # one user's requests as fast as the server answers.
                env=self.environment | {"TODO_PORT": str(port), "TODO_RATE_LIMITS": "none"} | settings,
                cwd=self.workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return Server(process, f"http://127.0.0.1:{port}", log)


@contextlib.contextmanager
def dev_mode_server(workdir: Path) -> Iterator[Server]:
    """`make run`'s server: development mode with its built-in secret, on a SQLite file in `workdir`."""
    database_url = f"sqlite+aiosqlite:///{workdir / 'todo.db'}"
    deployment = Deployment(clean_environment(TODO_DATABASE_URL=database_url, TODO_DEV_MODE="1"), workdir)
    deployment.migrate()
    running = deployment.start(run=1)
    try:
        running.wait_until_healthy()
        yield running
    finally:
        running.stop()


def deployed(database_url: str, workdir: Path) -> Deployment:
    """The settings that serve a database (migrated here) from `workdir`."""
    deployment = Deployment(clean_environment(TODO_DATABASE_URL=database_url, TODO_JWT_SECRET=TEST_SECRET), workdir)
    deployment.migrate()
    return deployment


@contextlib.contextmanager
def postgres_deployment(server_url: str, workdir: Path) -> Iterator[Deployment]:
    """A fresh, migrated PostgreSQL database of the caller's own, and the settings that serve it."""
    with fresh_postgres_database(server_url) as url:
        yield deployed(url, workdir)


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A migrated database of the test's own, and the settings that serve it."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    if request.param == "sqlite":
        yield deployed(f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}", workdir)
        return
    with postgres_deployment(request.getfixturevalue("postgres_server_url"), workdir) as deployment:
        yield deployment


def create_task(base_url: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/{USER}/tasks", json=fields, headers=bearer(USER), timeout=10.0)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def read_task(base_url: str, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/{USER}/tasks/{task_id}", headers=bearer(USER), timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_tasks_survive_a_server_restart(deployment: Deployment) -> None:
    first = deployment.start(run=1)
    try:
        first.wait_until_healthy()
        created = [
            create_task(first.base_url, title="Water the plants", tags=["home"]),
            create_task(first.base_url, title="File taxes", priority="high", due_at="2026-04-15T17:00:00+02:00"),
        ]
        changed = httpx.patch(
            f"{first.base_url}/api/{USER}/tasks/{created[0]['id']}",
            json={"description": "the ferns too"},
            headers=bearer(USER),
            timeout=10.0,
        )
        assert changed.status_code == 200, changed.text
        created[0] = changed.json()
    finally:
        exit_status = first.stop()
    # Uvicorn re-raises the SIGTERM it handled once shutdown is complete, so -SIGTERM is a clean stop too.
    assert exit_status in {0, -signal.SIGTERM}, f"the server did not stop cleanly on SIGTERM:\n{first.output()}"

    second = deployment.start(run=2)
    try:
        second.wait_until_healthy()
        read_back = [read_task(second.base_url, task["id"]) for task in created]
        listed = httpx.get(f"{second.base_url}/api/{USER}/tasks", headers=bearer(USER), timeout=10.0)
    finally:
        second.stop()

    assert read_back == created
    assert [(task["title"], task["version"]) for task in read_back] == [("Water the plants", 2), ("File taxes", 1)]
    assert read_back[1]["due_at"].startswith("2026-04-15T15:00:00")
    assert listed.status_code == 200, listed.text
    assert {task["id"] for task in listed.json()} == {task["id"] for task in created}


def test_page_cursors_work_whichever_worker_answers(deployment: Deployment) -> None:
    server = deployment.start(run=1, TODO_WORKERS="2")
    try:
        server.wait_until_healthy()
        for n in range(3):
            create_task(server.base_url, title=f"Task {n}")
        first = httpx.get(f"{server.base_url}/api/{USER}/tasks", params={"limit": 1}, headers=bearer(USER))
        following = first.links["next"]["url"]
        # Fresh connections, so the kernel spreads them over both workers.
        statuses = [
            httpx.get(
                following,
                headers={**bearer(USER), "Connection": "close"},
                timeout=10.0,
            ).status_code
            for _ in range(20)
        ]
    finally:
        server.stop()
    assert statuses == [200] * 20


def test_serve_without_a_way_to_verify_tokens_refuses_to_start(tmp_path: Path) -> None:
    environment = clean_environment(
        TODO_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}", TODO_PORT=str(free_port())
    )
    try:
        result = subprocess.run(
            todo_command("serve"),
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            timeout=REFUSAL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"`todo serve` was still running after {REFUSAL_SECONDS} s instead of refusing to start: {timeout}")
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode != 0
    assert "TODO_JWKS_URL" in stderr
    assert "TODO_JWT_SECRET" in stderr
