"""Two `todo serve` replicas on one PostgreSQL database deliver one user's webhooks to a real
receiver on loopback, which verifies every signature with the Standard Webhooks reference
library and fails the first try of some deliveries. One replica is killed (SIGKILL) while a
delivery of its is in flight, and started again.

What the design promises (docs/webhooks.md), and so what is asserted:
- every event arrives (at least once);
- a `webhook-id` is accepted (answered 2xx) twice only when its first acceptance was by the
  process that was killed, which died before it recorded it: the one at-least-once repeat, sent
  again once its lease ended; never more than twice;
- each `reminder.due` arrives exactly once, whatever the replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook as Verifier

from tests.asgi_requests import read_request
from tests.conftest import bearer
from tests.system.conftest import descendants
from tests.system.test_persistence import Deployment, Server, postgres_deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

USER = "hooks-replicas"
#: A killed replica's deliveries are sent again after this (TODO_WEBHOOKS_LEASE_SECONDS, its least).
LEASE_SECONDS = 15
#: The whole test's bound, from the first event to the last arrival.
DEADLINE_SECONDS = 45
REPLICA_SETTINGS = {
    "TODO_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "1",
    "TODO_WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
}


@dataclass
class Arrival:
    webhook_id: str
    event: dict[str, Any]
    sender: int | None
    accepted: bool
    at: float


@dataclass
class Receiver:
    """Verifies each request's signature; answers 500 to the first try of one webhook-id in
    three, 200 otherwise; holds the first request after `hold` is set until `release`."""

    secret: str = ""
    port: int = 0
    candidates: list[int] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held_sender: int | None = None
    held_id: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers, body = await read_request(scope, receive)
        arrived_at = time.monotonic()
        event = Verifier(self.secret).verify(body, headers)  # raises (a 500) on a bad signature
        webhook_id = headers["webhook-id"]
        sender = _sender(scope["client"][1], self.port, self.candidates)
        with self.lock:
            seen_before = any(arrival.webhook_id == webhook_id for arrival in self.arrivals)
            holding = self.hold.is_set() and not self.held.is_set()
            if holding:
                self.held_sender, self.held_id = sender, webhook_id
                self.held.set()
        if holding:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        fail_first = int(webhook_id.removeprefix("msg_"), 16) % 3 == 0 and not seen_before and not holding
        with self.lock:
            self.arrivals.append(Arrival(webhook_id, event, sender, not fail_first, arrived_at))
        with contextlib.suppress(Exception):  # the held one's sender is dead
            await send({"type": "http.response.start", "status": 500 if fail_first else 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    def accepted(self) -> list[Arrival]:
        with self.lock:
            return [arrival for arrival in self.arrivals if arrival.accepted]


def _sender(client_port: int, server_port: int, candidates: list[int]) -> int | None:
    """The process (among `candidates`) that holds the client end of the connection."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == client_port and int(remote.split(":")[1], 16) == server_port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        with contextlib.suppress(OSError):
            for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(descriptor) in inodes:
                        return pid
    return None


@contextlib.contextmanager
def serving(receiver: Receiver) -> Iterator[None]:
    """The receiver on loopback, in a thread of its own (the test's own waits block)."""
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=0, lifespan="off", log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield
    finally:
        receiver.release.set()
        server.should_exit = True
        thread.join(5)


def _pids(server: Server) -> list[int]:
    return [server.process.pid, *descendants(server.process.pid)]


def _call(server: Server, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(
        method, f"{server.base_url}/api/{USER}{path}", headers=bearer(USER), timeout=10.0, **kwargs
    )
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else {}


def _started(deployment: Deployment, run: int) -> Server:
    server = deployment.start(run=run, **REPLICA_SETTINGS)
    server.wait_until_healthy()
    return server


def test_two_replicas_and_a_kill_mid_delivery_lose_nothing_and_repeat_only_the_unrecorded(
    postgres_server_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    servers: list[Server] = []
    with postgres_deployment(postgres_server_url, workdir) as deployment, serving(receiver):
        try:
            first, second = _started(deployment, 1), _started(deployment, 2)
            servers += [first, second]
            receiver.candidates = _pids(first) + _pids(second)
            webhook = _call(first, "POST", "/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hooks"})
            receiver.secret = webhook["secret"]
            expected: list[tuple[str, str]] = []
            started = time.monotonic()

            receiver.hold.set()  # the first delivery is held while its sender is killed
            for n in range(8):
                server = servers[n % 2]
                task = _call(server, "POST", "/tasks", json={"title": f"Task {n}"})
                expected.append(("task.created", task["id"]))
                if n % 4 == 1:
                    _call(server, "PATCH", f"/tasks/{task['id']}", json={"title": f"Task {n}, renamed"})
                    expected.append(("task.updated", task["id"]))
                if n % 4 == 2:
                    _call(server, "DELETE", f"/tasks/{task['id']}")
                    expected.append(("task.deleted", task["id"]))
            assert receiver.held.wait(10), "no delivery arrived within 10 s"
            victim = next(s for s in servers if receiver.held_sender in _pids(s))
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(5)
            killed_at = time.monotonic()
            receiver.release.set()  # its answer goes nowhere: the victim never records it
            survivor = next(s for s in servers if s is not victim)
            receiver.candidates = _pids(survivor)
            restarted = _started(deployment, 3)
            servers.append(restarted)
            receiver.candidates += _pids(restarted)

            # Reminders, set through both live replicas; one cancelled before it is due.
            remind_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
            reminded = [
                _call(s, "POST", "/tasks", json={"title": "Remind me", "remind_at": remind_at})
                for s in (survivor, restarted)
            ]
            cancelled = _call(survivor, "POST", "/tasks", json={"title": "Done early", "remind_at": remind_at})
            _call(restarted, "PATCH", f"/tasks/{cancelled['id']}/complete", json={"completed": True})
            expected += [("task.created", t["id"]) for t in [*reminded, cancelled]]
            expected += [("task.completed", cancelled["id"])]
            expected += [("reminder.due", t["id"]) for t in reminded]

            held = receiver.held_id
            while time.monotonic() - started < DEADLINE_SECONDS:
                accepted = receiver.accepted()
                arrived = {(a.event["type"], a.event["data"]["id"]) for a in accepted}
                held_again = sum(a.webhook_id == held for a in accepted) >= 2
                if set(expected) <= arrived and held_again:
                    break
                time.sleep(0.2)
            time.sleep(2)  # anything sent twice by mistake would come now
            accepted = receiver.accepted()
        finally:
            for server in servers:
                server.stop()

    elapsed = time.monotonic() - started
    arrived = [(a.event["type"], a.event["data"]["id"]) for a in accepted]
    assert set(expected) <= set(arrived), f"lost: {set(expected) - set(arrived)} ({elapsed:.0f} s)"
    assert {kind for kind, _ in arrived} <= {kind for kind, _ in expected}
    assert ("reminder.due", cancelled["id"]) not in arrived
    for task in reminded:
        assert arrived.count(("reminder.due", task["id"])) == 1
    by_id: dict[str, list[Arrival]] = {}
    for arrival in accepted:
        by_id.setdefault(arrival.webhook_id, []).append(arrival)
    repeated = {webhook_id: found for webhook_id, found in by_id.items() if len(found) > 1}
    assert held in repeated, "the delivery in flight when its sender died was not sent again"
    for webhook_id, found in repeated.items():
        first_accepted, again = found
        assert first_accepted.sender == victim.process.pid, f"{webhook_id} accepted twice, not after a crash"
        assert first_accepted.at <= killed_at <= again.at
        assert again.sender != victim.process.pid
    failed_first = [a for a in receiver.arrivals if not a.accepted]
    assert failed_first, "no first try failed: the retry path was not exercised"
    assert {a.sender for a in accepted} >= {survivor.process.pid}
    assert elapsed < DEADLINE_SECONDS
    print(
        f"{len(accepted)} accepted, {len(failed_first)} first tries failed, "
        f"repeated {sorted(repeated)}, {elapsed:.1f} s"
    )
