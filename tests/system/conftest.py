"""Shared by the system tests: `todo serve` with two workers, and which worker serves a connection.

Which worker serves a connection is read from /proc: the worker process that holds the server's
end of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.system.test_persistence import Server, postgres_deployment


@pytest.fixture
def two_workers(postgres_server_url: str, tmp_path: Path) -> Iterator[Server]:
    """`todo serve` with two workers on a migrated database of the test's own, its temporary
    files in `tmp_path / "tmp"`."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (tmp_path / "tmp").mkdir()
    with postgres_deployment(postgres_server_url, workdir) as deployment:
        server = deployment.start(run=1, TODO_WORKERS="2", TMPDIR=str(tmp_path / "tmp"))
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
    for pid in descendants(server.process.pid):
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) in sockets:
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no worker of {server.process.pid} holds the connection from port {client_port}")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 100:
        parent = pending.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        found += map(int, children)
        pending += map(int, children)
    return found
