"""Prometheus metrics: requests by route template and status, their latency, the database pool's
connections and the open event streams.

With several worker processes (`todo serve` with `TODO_WORKERS` > 1) each worker writes its
values to files in `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode), and the
worker that answers a scrape adds up every worker's files: whichever worker answers, the counts
are those of the whole server. `todo serve` makes that directory and removes it when it exits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from todo_adapters.sqlalchemy.engine import PoolUsage
from todo_api.settings import MULTIPROCESS_DIRECTORY

#: The `route` label of a request no route matched: the raw path must never become a label.
UNMATCHED_ROUTE = "unmatched"
#: The `method` label of any method the API does not serve (a client may send anything).
OTHER_METHOD = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Seconds. A list answers in a few milliseconds; a request waiting for a database connection
#: takes up to TODO_DB_TIMEOUT_SECONDS (5).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_directory() -> str | None:
    """Where the workers of this server share their values; None with one process."""
    return os.environ.get(MULTIPROCESS_DIRECTORY) or None


class Metrics:
    """The metrics of one app: its own registry, so that apps made side by side (tests) count
    apart. In multiprocess mode the values go to the shared files whatever the registry."""

    def __init__(self, pool_usage: Callable[[], PoolUsage], directory: str | None = None) -> None:
        self._pool_usage = pool_usage
        self._directory = directory
        self._registry = CollectorRegistry()
        self._requests = Counter(
            "todo_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self._registry,
        )
        self._latency = Histogram(
            "todo_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (an event stream's: when it closes)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )
        self._pool_in_use = Gauge(
            "todo_db_pool_connections_in_use",
            "Database connections lent to requests (a worker's are current as of its last second)",
            registry=self._registry,
            multiprocess_mode="livesum",
        )
        self._pool_waiting = Gauge(
            "todo_db_pool_requests_waiting",
            "Requests waiting for a database connection (PostgreSQL; always 0 on SQLite)",
            registry=self._registry,
            multiprocess_mode="livesum",
        )
        self.event_streams = Gauge(
            "todo_event_streams_open",
            "Server-Sent Event streams open (GET /api/{user_id}/events)",
            registry=self._registry,
            multiprocess_mode="livesum",
        )
        # A request's labelled children, found once: `labels()` costs a lock and a few lookups.
        self._counted: dict[tuple[str, str, int], Callable[[], None]] = {}
        self._timed: dict[tuple[str, str], Callable[[float], None]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request answered and its duration (`route` is a template, never a raw path)."""
        if method not in _METHODS:
            method = OTHER_METHOD
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._counted[method, route, status] = self._requests.labels(method, route, str(status)).inc
        counted()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[method, route] = self._latency.labels(method, route).observe
        timed(seconds)

    def refresh_pool(self) -> None:
        """Read the database pool's usage into its gauges."""
        usage = self._pool_usage()
        self._pool_in_use.set(usage.in_use)
        self._pool_waiting.set(usage.waiting)

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format: this process's, or in multiprocess mode the
        sum over every worker (counters and histograms of workers that have exited included)."""
        self.refresh_pool()
        if self._directory is None:
            return generate_latest(self._registry)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=self._directory)  # type: ignore[no-untyped-call]
        return generate_latest(combined)

    @property
    def multiprocess(self) -> bool:
        return self._directory is not None

    def forget_dead_workers(self) -> None:
        """Drop the gauges of worker processes that are gone (killed, crashed: they could not say
        so themselves), so that open streams and connections count live workers only."""
        if self._directory is None:
            return
        for file in Path(self._directory).glob("gauge_live*_*.db"):
            pid = int(file.stem.rsplit("_", 1)[1])
            if not _alive(pid):
                multiprocess.mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]

    def leave(self) -> None:
        """This worker stops: its gauges no longer count (its counters still do)."""
        if self._directory is not None:
            multiprocess.mark_process_dead(os.getpid(), self._directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    with contextlib.suppress(PermissionError):  # alive, another user's (not ours, but not dead)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True
