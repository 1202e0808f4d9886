"""One export per account across server processes: two `todo serve` on one database, a client
that reads slowly holds an export of its account on the first, and the second refuses another
export of that account (429) while it serves another account's."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bearer
from tests.system.test_persistence import Deployment, Server, deployment

pytestmark = pytest.mark.slow

__all__ = ["deployment"]  # the fixture, from the persistence tests

#: Tasks in the slow reader's account, each with a description this long: ~8 MB, twice what the
#: kernel buffers on a loopback connection (tcp_wmem's 4 MB), so the server is still sending.
TASKS = 800
KERNEL_SEND_BUFFER = 4_194_304
DESCRIPTION = "x" * 9_900
RECEIVE_BUFFER = 4096
TIMEOUT = 60.0


@pytest.fixture
def two_servers(deployment: Deployment) -> Iterator[tuple[Server, Server]]:
    servers = [deployment.start(run=1), deployment.start(run=2)]
    try:
        for server in servers:
            server.wait_until_healthy()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def import_large_account(base_url: str, user: str) -> None:
    tasks = [{"id": str(uuid.uuid4()), "title": f"Task {n}", "description": DESCRIPTION} for n in range(TASKS)]
    document = {"format": "todo-export", "version": 1, "tasks": tasks}
    response = httpx.post(f"{base_url}/api/{user}/import", json=document, headers=bearer(user), timeout=TIMEOUT)
    assert response.status_code == 201, response.text


def export(base_url: str, user: str) -> httpx.Response:
    return httpx.get(f"{base_url}/api/{user}/export", headers=bearer(user), timeout=TIMEOUT)


class SlowExport:
    """`GET /export` whose reader took the headers and then stopped reading."""

    def __init__(self, base_url: str, user: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.socket.settimeout(TIMEOUT)
        self.socket.connect((host, int(port)))
        token = bearer(user)["Authorization"]
        self.socket.sendall(
            f"GET /api/{user}/export HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received and len(received) < 65536:
            received += self.socket.recv(RECEIVE_BUFFER)
        head, self.body = received.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}

    def finish(self) -> bytes:
        """The rest of the body, read at full speed."""
        length = int(self.headers["content-length"])
        while len(self.body) < length and (part := self.socket.recv(1 << 16)):
            self.body += part
        self.socket.close()
        return self.body


def test_a_second_export_of_an_account_on_another_server_process_is_429_while_one_runs(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    slow_user, other_user = f"user-{uuid.uuid4().hex[:12]}", f"user-{uuid.uuid4().hex[:12]}"
    import_large_account(first.base_url, slow_user)
    created = httpx.post(
        f"{second.base_url}/api/{other_user}/tasks", json={"title": "Mine"}, headers=bearer(other_user), timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text

    held = SlowExport(first.base_url, slow_user)
    try:
        assert held.status == 200
        refused = export(second.base_url, slow_user)
        others = export(second.base_url, other_user)
        body = held.finish()
    finally:
        held.socket.close()

    assert refused.status_code == 429, refused.status_code
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/export-running"
    assert int(refused.headers["retry-after"]) > 0
    assert others.status_code == 200, others.text
    assert [task["title"] for task in others.json()["tasks"]] == ["Mine"]
    # Far more than the kernel could hold for the stalled reader: the server was still sending.
    assert len(body) == int(held.headers["content-length"]) > 1.5 * KERNEL_SEND_BUFFER
    # Once the first is sent, the account's lock is let go: the other process exports it.
    again = export(second.base_url, slow_user)
    assert again.status_code == 200, again.status_code
    assert len(again.json()["tasks"]) == TASKS
