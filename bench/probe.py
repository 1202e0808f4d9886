"""Another user, at a steady modest rate, while someone abuses the server: the probe of
`bench.abuse`. And the server's own gauges, sampled meanwhile.

The probe is open-loop at a fixed schedule (a list, then a create, `rate` requests a second in
all), not a load generator's closed loop: an abuser that slows the server down does not also
slow the probe's asking down, so its latencies are what a person clicking would see. A request
that overruns its slot delays the next one (counted as `late`), it never piles up requests.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.procs import Server, descendants, rss_kib

#: A probe request slower than this is an error (the server gave no answer in time).
PROBE_TIMEOUT_SECONDS = 30.0


@dataclass
class Sample:
    kind: str  # "list" or "create"
    status: int  # 0: no answer (connection error or timeout)
    seconds: float
    error: str = ""


def percentile(sorted_values: list[float], share: float) -> float:
    """The nearest-rank percentile of values sorted ascending (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_figures(samples: list[Sample]) -> dict[str, Any]:
    """Count, p50/p99/max in ms, and the failures (any answer but 200/201, or none) by status."""
    latencies = sorted(sample.seconds for sample in samples)
    failures: dict[str, int] = {}
    for sample in samples:
        if sample.status not in (200, 201):
            key = str(sample.status) if sample.status else f"no answer ({sample.error})"
            failures[key] = failures.get(key, 0) + 1
    return {
        "requests": len(samples),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "errors": sum(failures.values()),
        "failures": failures,
    }


class Probe:
    """One user listing 50 open tasks and creating one task, in turns, `rate` requests a second,
    on one kept-alive connection (a new one after a failure), in a thread of its own."""

    def __init__(self, server: Server, user: str, token: str, *, rate: float = 10.0) -> None:
        self.server = server
        self.user = user
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = 1.0 / rate
        self.samples: list[Sample] = []
        self.late = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: http.client.HTTPConnection | None = None

    def run_for(self, seconds: float) -> dict[str, Any]:
        """Probe for `seconds` in this thread; the figures of that stretch alone."""
        self.start()
        time.sleep(seconds)
        return self.stop()

    def start(self) -> None:
        self.samples, self.late = [], 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT_SECONDS + 5)
        return self.figures()

    def figures(self) -> dict[str, Any]:
        samples = list(self.samples)
        return {
            **latency_figures(samples),
            "late": self.late,
            "list": latency_figures([sample for sample in samples if sample.kind == "list"]),
            "create": latency_figures([sample for sample in samples if sample.kind == "create"]),
        }

    def _loop(self) -> None:
        serial, due = 0, time.monotonic()
        try:
            while not self._stop.is_set():
                serial += 1
                if serial % 2:
                    self._request("list", "GET", f"/api/{self.user}/tasks?status=pending&limit=50", None)
                else:
                    body = json.dumps({"title": f"probe {serial}", "tags": ["probe"]}).encode()
                    self._request("create", "POST", f"/api/{self.user}/tasks", body)
                due += self.interval
                wait = due - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                else:
                    self.late += 1
                    due = time.monotonic()
        finally:
            if self._connection is not None:
                self._connection.close()

    def _request(self, kind: str, method: str, path: str, body: bytes | None) -> None:
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=PROBE_TIMEOUT_SECONDS)
        headers = {**self.headers, **({"Content-Type": "application/json"} if body else {})}
        started = time.perf_counter()
        try:
            self._connection.request(method, path, body=body, headers=headers)
            response = self._connection.getresponse()
            response.read()
            self.samples.append(Sample(kind, response.status, time.perf_counter() - started))
        except (OSError, http.client.HTTPException) as error:
            self.samples.append(Sample(kind, 0, time.perf_counter() - started, type(error).__name__))
            self._connection.close()
            self._connection = None


_GAUGES = {
    "pool_in_use": "todo_db_pool_connections_in_use",
    "pool_waiting": "todo_db_pool_requests_waiting",
    "event_streams": "todo_event_streams_open",
}


@dataclass
class Gauges:
    """The highest value of the server's own gauges (`/metrics`, current as of each worker's
    last second) and of its workers' resident memory, sampled every `interval` seconds."""

    server: Server
    interval: float = 0.5
    highest: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Gauges:
        self._thread = threading.Thread(target=self._loop, name="gauges", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, http.client.HTTPException):
                self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode(errors="replace")
        finally:
            connection.close()
        for key, name in _GAUGES.items():
            match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
            if match:
                self._keep(key, float(match[1]))
        workers = [pid for pid in descendants(self.server.pid) if pid != self.server.pid]
        rss = [kib for kib in (rss_kib(pid) for pid in workers) if kib is not None]
        if rss:
            self._keep("worker_rss_mb", max(rss) / 1024)

    def _keep(self, key: str, value: float) -> None:
        self.highest[key] = max(value, self.highest.get(key, value))
