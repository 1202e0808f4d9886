"""A large import into `todo serve` on SQLite: other users' writes go on meanwhile, and a server
killed half-way through it shows nothing of it, then deletes what it wrote when it starts again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_portability_api import a_large_document
from tests.conftest import bearer
from tests.system.conftest import descendants
from tests.system.test_persistence import deployed

#: Bounds a time against the import's own: run with the machine to itself.
pytestmark = pytest.mark.alone

#: 10,000 tasks (~4 MB): seconds of writing on SQLite.
TOP_LEVEL = 5000
TIMEOUT = 120.0


def start_import(base_url: str, user: str, body: bytes) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []

    def send() -> None:
        headers = {**bearer(user), "Content-Type": "application/json"}
        with contextlib.suppress(httpx.TransportError):  # the server was killed
            answers.append(httpx.post(f"{base_url}/api/{user}/import", content=body, headers=headers, timeout=TIMEOUT))

    thread = threading.Thread(target=send)
    thread.start()
    return thread, answers


def rows_of(path: Path, user: str) -> tuple[int, str | None]:
    """The user's task rows in the file, whatever reads show, and the import's mark."""
    with sqlite3.connect(path, timeout=10) as connection:
        tasks = connection.execute("SELECT count(*) FROM tasks WHERE user_id = ?", (user,)).fetchone()[0]
        mark = connection.execute("SELECT importing FROM user_changes WHERE user_id = ?", (user,)).fetchone()
    return tasks, mark[0] if mark else None


def test_other_users_writes_wait_far_less_than_a_large_import_takes(tmp_path: Path) -> None:
    """Before, the import held SQLite's one writer lock to its end: another user's create waited
    about as long as the import took. Now it waits for one slice at most (bounded here by a
    third of the import's time, which holds however slow the machine is)."""
    deployment = deployed(f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}", tmp_path)
    server = deployment.start(run=1, TODO_WORKERS="1")
    try:
        server.wait_until_healthy()
        body = json.dumps(a_large_document(steps_per_task=1, top_level=TOP_LEVEL)).encode()
        with httpx.Client(base_url=server.base_url, headers=bearer("other"), timeout=TIMEOUT) as other:
            assert other.post("/api/other/tasks", json={"title": "warm"}).status_code == 201
            started = time.monotonic()
            thread, answers = start_import(server.base_url, "importer", body)
            waits: list[float] = []
            while thread.is_alive() and time.monotonic() - started < TIMEOUT:
                sent = time.monotonic()
                assert other.post("/api/other/tasks", json={"title": "meanwhile"}).status_code == 201
                waits.append(time.monotonic() - sent)
                time.sleep(0.05)
            thread.join(TIMEOUT)
            took = time.monotonic() - started
        assert answers and answers[0].status_code == 201, answers
        assert answers[0].json()["tasks"] == 2 * TOP_LEVEL
        assert len(waits) > 5
        assert max(waits) < took / 3, (took, sorted(waits)[-5:])
    finally:
        server.stop()


def test_an_import_killed_half_way_shows_nothing_and_is_swept_at_startup(tmp_path: Path) -> None:
    path = tmp_path / "todo.db"
    deployment = deployed(f"sqlite+aiosqlite:///{path}", tmp_path)
    server = deployment.start(run=1, TODO_WORKERS="1")
    body = json.dumps(a_large_document(steps_per_task=1, top_level=TOP_LEVEL)).encode()
    try:
        server.wait_until_healthy()
        with httpx.Client(base_url=server.base_url, headers=bearer("importer"), timeout=TIMEOUT) as http:
            assert http.post("/api/importer/tasks", json={"title": "Mine"}).status_code == 201
        thread, answers = start_import(server.base_url, "importer", body)
        deadline = time.monotonic() + TIMEOUT
        while rows_of(path, "importer")[0] < 1000:  # some slices are written
            assert time.monotonic() < deadline and thread.is_alive(), "the import ended before it could be killed"
            time.sleep(0.02)
        for pid in [*descendants(server.process.pid), server.process.pid]:  # a crash: no clean-up
            os.kill(pid, signal.SIGKILL)
        server.process.wait(10)
        thread.join(TIMEOUT)
    finally:
        server.stop()
    assert not answers  # never answered
    written, mark = rows_of(path, "importer")
    assert written > 1000 and mark is not None  # half-written, and marked

    again = deployment.start(run=2, TODO_WORKERS="1")
    try:
        again.wait_until_healthy()
        with httpx.Client(base_url=again.base_url, headers=bearer("importer"), timeout=TIMEOUT) as http:
            listed = http.get("/api/importer/tasks", params={"limit": 200})
            assert [task["title"] for task in listed.json()] == ["Mine"]  # never shown
            deadline = time.monotonic() + TIMEOUT
            while rows_of(path, "importer") != (1, None):  # swept at startup
                assert time.monotonic() < deadline, rows_of(path, "importer")
                time.sleep(0.1)
            assert http.post("/api/importer/tasks", json={"title": "Works"}).status_code == 201
            assert not list(tmp_path.glob("todo.db-import-*"))
    finally:
        again.stop()
