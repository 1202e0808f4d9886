"""Clients that misbehave on purpose, for `bench.abuse`: a slow export reader and a hoard of
event streams. (The pollers and the greedy batcher are wrk scripts: `wrk/poll.lua`,
`wrk/greedy.lua`.) Every one is bounded by a deadline and closes what it opened."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

#: The receive buffer a slow reader asks for: small, so that the server's writes block soon
#: instead of filling megabytes of loopback buffers it never has to wait on.
SLOW_RECEIVE_BUFFER = 4096
#: A slow reader reads this often (its rate is spread over these ticks).
TICK_SECONDS = 0.25


@dataclass
class Download:
    status: int
    length: int | None
    received: int
    seconds: float
    problem: str = ""
    retry_after: str = ""

    @property
    def complete(self) -> bool:
        return self.status == 200 and self.length is not None and self.received == self.length

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def _connection(port: int, timeout: float, receive_buffer: int | None = None) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    connection.sock = sock
    return connection


def _problem_type(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("type", "")).rsplit("/", 1)[-1]
    return ""


def slow_download(port: int, path: str, token: str, *, bytes_per_second: int, deadline: float) -> Download:
    """GET `path` and read its body at `bytes_per_second`, until the end, the connection closes,
    or the monotonic `deadline` (then the download counts as cut by us, not by the server)."""
    started = time.monotonic()
    connection = _connection(port, timeout=max(1.0, deadline - started), receive_buffer=SLOW_RECEIVE_BUFFER)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            body = response.read()
            return Download(
                response.status,
                None,
                len(body),
                time.monotonic() - started,
                _problem_type(body),
                response.getheader("Retry-After") or "",
            )
        length_header = response.getheader("Content-Length")
        length = int(length_header) if length_header else None
        received, per_tick, tick = 0, max(1, int(bytes_per_second * TICK_SECONDS)), time.monotonic()
        while time.monotonic() < deadline:
            try:
                chunk = response.read(per_tick)
            except (OSError, http.client.HTTPException):
                break
            if not chunk:
                break
            received += len(chunk)
            tick += TICK_SECONDS
            time.sleep(max(0.0, min(tick, deadline) - time.monotonic()))
        return Download(200, length, received, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as error:
        return Download(0, None, 0, time.monotonic() - started, type(error).__name__)
    finally:
        connection.close()


@dataclass
class StreamAnswer:
    status: int
    problem: str = ""
    retry_after: str = ""


class EventStreams:
    """Event streams of one user, opened and then held open (not read) until `close`."""

    def __init__(self, port: int, user: str, token: str) -> None:
        self.port = port
        self.path = f"/api/{user}/events"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        self.held: list[http.client.HTTPConnection] = []

    def open(self, *, hold: bool = True) -> StreamAnswer:
        """One more stream: its status (0 if none came); held open if it was accepted and `hold`."""
        try:
            connection = _connection(self.port, timeout=10)
        except OSError as error:
            return StreamAnswer(0, type(error).__name__)
        try:
            connection.request("GET", self.path, headers=self.headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return StreamAnswer(0, type(error).__name__)
        if response.status == 200 and hold:
            self.held.append(connection)
            return StreamAnswer(200)
        body = b"" if response.status == 200 else response.read()
        connection.close()
        return StreamAnswer(response.status, _problem_type(body), response.getheader("Retry-After") or "")

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.held.clear()


class WatchedStream:
    """One event stream read in a thread of its own: whether it opened, and the `changed`
    events it delivered (another user's stream, to see that it is unaffected)."""

    def __init__(self, port: int, user: str, token: str) -> None:
        self.user, self.token = user, token
        self.status = 0
        self.events = 0
        self._connection = _connection(port, timeout=60)
        self._thread = threading.Thread(target=self._read, name="watched-stream", daemon=True)

    def __enter__(self) -> WatchedStream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # Shutting the socket down ends the blocked read at once (a read timeout would leave
        # the buffered reader unusable, and wait for it).
        with contextlib.suppress(OSError):
            if self._connection.sock is not None:
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._connection.close()

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        try:
            self._connection.request("GET", f"/api/{self.user}/events", headers=headers)
            response = self._connection.getresponse()
            self.status = response.status
            while self.status == 200:
                line = response.fp.readline()
                if not line:
                    return
                if line.startswith(b"event: changed"):
                    self.events += 1
        except (OSError, ValueError, http.client.HTTPException):
            return
