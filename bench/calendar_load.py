"""What a calendar costs, and what it costs everyone else: part of `make bench`, or on its own
with `python -m bench.calendar_load` (~1 minute; a PostgreSQL database of its own, dropped after).

On a `todo serve` of ONE worker (so that every request below shares one event loop), a user with
2,000 tasks made through `POST /batch` (due dates over two months in five zones, a third of them
repeating with a reminder, tags, some descriptions):
- **render**: GET calendar.ics right after a change (a PATCH of one task): the whole read and
  render, timed by the client, and the server's CPU time per render. The median of BENCH_RENDERS.
- **cached 200**: GET again with nothing changed: the kept render (wrk).
- **304**: GET with `If-None-Match` (a calendar app's poll, wrk): one read of the change number.
- **others while calendars render**: list-50 of another user (wrk -c4), first alone, then while
  two clients change a task and fetch the calendar in a loop, so that it renders again and again.
  p50 / p99 both ways, and the renders done meanwhile.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bench.loadgen import measure
from bench.procs import Server, tree_cpu_seconds

CALENDAR_TASKS = 2000
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "UTC"]
BATCH = 100


class Tokens(Protocol):
    def token(self, user_id: str) -> str: ...


def log(message: str) -> None:
    print(f"[calendar] {message}", file=sys.stderr, flush=True)


class Client:
    """One kept-alive connection to the server, as one user."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {**self.headers, **(headers or {}), **({"Content-Type": "application/json"} if payload else {})}
        self.connection.request(method, path, body=payload, headers=sent)
        response = self.connection.getresponse()
        content = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path} answered {response.status}: {content[:300]!r}")
        return response.status, dict(response.getheaders()), content

    def close(self) -> None:
        self.connection.close()


def task_bodies(count: int, rng: random.Random) -> list[dict[str, Any]]:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    bodies = []
    for n in range(count):
        due = start + timedelta(minutes=rng.randrange(60 * 24 * 60))
        body: dict[str, Any] = {
            "title": f"Task {n}: call the plumber about the Straße 12 lease",
            "tags": rng.sample(["home", "work", "errands", "Ideas", "later"], rng.randrange(3)),
            "priority": rng.choice(["none", "low", "medium", "high"]),
            "due_at": due.isoformat(),
            "time_zone": rng.choice(ZONES),
        }
        if n % 4 == 0:
            body["description"] = "Bring the papers; ask about the heating. " * rng.randrange(1, 6)
        if n % 3 == 0:
            body |= {"recurrence": "FREQ=WEEKLY;BYDAY=FR", "remind_at": (due - timedelta(hours=1)).isoformat()}
        bodies.append(body)
    return bodies


def seed(server: Server, tokens: Tokens, user: str, count: int) -> list[str]:
    """The user's `count` tasks, made through /batch; their ids."""
    client = Client(server, tokens.token(user))
    ids: list[str] = []
    try:
        bodies = task_bodies(count, random.Random(20261207))
        for first in range(0, count, BATCH):
            operations = [{"op": "create", "body": body} for body in bodies[first : first + BATCH]]
            _, _, content = client.send("POST", f"/api/{user}/batch", {"operations": operations})
            ids += [result["body"]["id"] for result in json.loads(content)["results"]]
    finally:
        client.close()
    return ids


def run(
    server: Server,
    tokens: Tokens,
    *,
    other_path: str,
    other_token: str,
    seconds: float,
    warmup_seconds: float,
    renders: int = int(os.environ.get("BENCH_RENDERS", "10")),
    pg_pid: int | None = None,
) -> dict[str, Any]:
    """Every figure of the module docstring, measured on `server` (one worker); `other_path` is
    another user's request (e.g. a list of 50) whose latency is measured."""
    user = f"bench-calendar-{secrets.token_hex(4)}"
    started = time.perf_counter()
    ids = seed(server, tokens, user, CALENDAR_TASKS)
    log(f"seeded {len(ids)} tasks through /batch in {time.perf_counter() - started:.1f} s")
    path = f"/api/{user}/calendar.ics"
    client = Client(server, tokens.token(user))
    results: dict[str, Any] = {"tasks": len(ids), "server_workers": 1}
    try:
        # The render after a change, timed by the client; the server's CPU time around it.
        wall, cpu, size = [], [], 0
        for n in range(renders + 1):  # the first warms up
            client.send("PATCH", f"/api/{user}/tasks/{ids[n]}", {"title": f"Changed {n}"})
            cpu_before, before = tree_cpu_seconds(server.pid), time.perf_counter()
            _status, headers, body = client.send("GET", path)
            if n:
                wall.append(time.perf_counter() - before)
                cpu.append(tree_cpu_seconds(server.pid) - cpu_before)
            size = len(body)
        vtodos = body.count(b"BEGIN:VTODO")
        results["render"] = {
            "rounds": renders,
            "wall_ms_median": statistics.median(wall) * 1000,
            "wall_ms_max": max(wall) * 1000,
            "server_cpu_ms_median": statistics.median(cpu) * 1000,
            "bytes": size,
            "vtodos": vtodos,
        }
        log(
            f"render of {vtodos} VTODOs ({size / 1024:.0f} KiB): median {statistics.median(wall) * 1000:.0f} ms wall, "
            f"{statistics.median(cpu) * 1000:.0f} ms server CPU"
        )
        etag = headers["etag"]
        token = tokens.token(user)
        for name, tag in (("cached", ""), ("not_modified", etag)):
            measurement, _ = measure(
                f"calendar-{name}",
                "todo",
                1,
                f"http://127.0.0.1:{server.port}{path}",
                "conditional.lua",
                server_pid=server.pid,
                pg_pid=pg_pid,
                threads=1,
                connections=4,
                seconds=seconds,
                warmup_seconds=warmup_seconds,
                env={"BENCH_TOKEN": token, "BENCH_IF_NONE_MATCH": tag},
            )
            results[name] = _figures(measurement)
            log(
                f"{name:<12} {measurement.rps:7,.0f} req/s  p50 {measurement.p50_us / 1000:6.2f} ms  "
                f"p99 {measurement.p99_us / 1000:6.2f} ms  "
                f"server {measurement.server_us_per_request or 0:,.0f} µs/req  statuses {measurement.statuses}  "
                f"timeouts (2 s) {measurement.timeouts}"
            )

        def others(label: str) -> dict[str, Any]:
            measurement, _ = measure(
                f"others-{label}",
                "todo",
                1,
                f"http://127.0.0.1:{server.port}{other_path}",
                "conditional.lua",
                server_pid=server.pid,
                pg_pid=pg_pid,
                threads=1,
                connections=4,
                seconds=seconds,
                warmup_seconds=warmup_seconds,
                env={"BENCH_TOKEN": other_token, "BENCH_IF_NONE_MATCH": ""},
            )
            log(
                f"others {label:<16} {measurement.rps:7,.0f} req/s  p50 {measurement.p50_us / 1000:6.2f} ms  "
                f"p99 {measurement.p99_us / 1000:6.2f} ms  max {measurement.max_us / 1000:6.1f} ms  "
                f"timeouts (2 s) {measurement.timeouts}"
            )
            return _figures(measurement)

        settle(server)
        results["others_alone"] = others("alone")
        rendered = [0]
        stop = threading.Event()

        def render_in_a_loop(offset: int) -> None:
            own = Client(server, token)
            n = offset
            try:
                while not stop.is_set():
                    own.send("PATCH", f"/api/{user}/tasks/{ids[n % len(ids)]}", {"title": f"Loop {n}"})
                    own.send("GET", path)
                    rendered[0] += 1
                    n += 2
            finally:
                own.close()

        loops = [threading.Thread(target=render_in_a_loop, args=(offset,), daemon=True) for offset in (0, 1)]
        for loop in loops:
            loop.start()
        try:
            loop_started = time.perf_counter()
            results["others_while_rendering"] = others("while rendering")
            loop_seconds = time.perf_counter() - loop_started
        finally:
            stop.set()
            for loop in loops:
                loop.join(timeout=60)
        results["renders_meanwhile"] = rendered[0]
        results["renders_per_second_meanwhile"] = rendered[0] / loop_seconds
        log(f"{rendered[0]} calendars rendered meanwhile ({rendered[0] / loop_seconds:.1f}/s)")
    finally:
        client.close()
    return results


def settle(server: Server, *, quiet_ms: float = 50, limit_seconds: float = 120) -> None:
    """Wait until the server answers /healthz within `quiet_ms`: requests a load generator gave
    up on may still be running (a server that renders each 304 keeps rendering them)."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=limit_seconds)
        try:
            before = time.perf_counter()
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            if (time.perf_counter() - before) * 1000 < quiet_ms:
                return
        finally:
            connection.close()
        time.sleep(0.5)


def _figures(measurement: Any) -> dict[str, Any]:
    return {
        "rps": measurement.rps,
        "p50_ms": measurement.p50_us / 1000,
        "p99_ms": measurement.p99_us / 1000,
        "max_ms": measurement.max_us / 1000,
        "server_us_per_request": measurement.server_us_per_request,
        "statuses": measurement.statuses,
        "errors": measurement.error_count,
        "timeouts": measurement.timeouts,
        "other_cpu_share": measurement.other_cpu_share,
    }


def markdown(results: dict[str, Any]) -> str:
    """The section of the bench report."""
    if not results:
        return ""
    render = results["render"]
    rows = [
        ("render after a change (client wall, median)", f"{render['wall_ms_median']:.0f} ms", "-", "-"),
        ("render: server CPU per render (median)", f"{render['server_cpu_ms_median']:.0f} ms", "-", "-"),
    ]
    for key, label in (
        ("cached", "GET, nothing changed (kept render), wrk -c4"),
        ("not_modified", "GET with If-None-Match → 304, wrk -c4"),
        ("others_alone", "another user's list-50, alone, wrk -c4"),
        ("others_while_rendering", "another user's list-50 while 2 clients re-render in a loop"),
    ):
        figures = results[key]
        rate = f"{figures['rps']:,.0f} req/s"
        if figures["timeouts"]:
            rate += f", {figures['timeouts']} timed out (2 s)"
        rows.append((label, rate, f"{figures['p50_ms']:.2f} ms", f"{figures['p99_ms']:.2f} ms"))
    lines = [
        "## Calendar (issue 18 / 19): `todo serve` with ONE worker",
        "",
        f"A user of {results['tasks']:,} tasks; the calendar holds {render['vtodos']:,} VTODOs "
        f"({render['bytes'] / 1024:,.0f} KiB). {results['renders_meanwhile']} calendars were rendered "
        f"({results['renders_per_second_meanwhile']:.1f}/s) during the last row.",
        "",
        "| what | figure | p50 | p99 |",
        "|---|---|---|---|",
        *(f"| {label} | {figure} | {p50} | {p99} |" for label, figure, p50, p99 in rows),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """On its own: a database of its own on TODO_BENCH_DATABASE_URL's server, a one-worker server."""
    import psycopg
    from psycopg import sql

    from bench.run import Stack, _with_database  # here: bench.run imports this module

    server_url = os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    database = f"todo_bench_calendar_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            stack = Stack(Path(scratch))
            url = _with_database(server_url, database)
            stack.migrate(url)
            server = stack.start_todo("todo-calendar", url, workers=1)
            try:
                other = "bench-other"
                seed(server, stack, other, 50)
                results = run(
                    server,
                    stack,
                    other_path=f"/api/{other}/tasks?status=pending&limit=50",
                    other_token=stack.token(other),
                    seconds=seconds,
                    warmup_seconds=min(2.0, max(1.0, seconds / 4)),
                )
            finally:
                server.stop()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    print(markdown(results))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
