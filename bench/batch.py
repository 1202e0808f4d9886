"""One batch or many requests: what `POST /batch` saves a client that creates or deletes many tasks.

`python -m bench.batch` creates a PostgreSQL database of its own (dropped after, even on
failure), migrates it, serves it with one real `todo serve` (one worker), and in alternating
rounds makes, for a fresh user each time, BENCH_BATCH_TASKS tasks (default 100) with one
`POST /tasks` each over one kept-alive connection, then the same with one `POST /batch`, and
deletes them both ways. It reads the CPU time of the server's process tree and of PostgreSQL's
from /proc around each run and prints, per task, the medians of BENCH_ROUNDS rounds (default 5):
wall time, server CPU and PostgreSQL CPU. CPU time is what to trust on a shared machine.

Settings: TODO_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_ROUNDS, BENCH_BATCH_TASKS (1-100).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from bench.procs import Server, http_request, postmaster_pid, tree_cpu_seconds
from bench.run import Stack, _with_database

SERVER_URL = os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TASKS = int(os.environ.get("BENCH_BATCH_TASKS", "100"))


class Client:
    """One user's kept-alive connection to the server."""

    def __init__(self, server: Server, token: str, user: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.port = server.port
        self.token = token
        self.user = user

    def send(self, method: str, path: str, body: object, expected: int) -> bytes:
        payload = None if body is None else json.dumps(body).encode()
        status, answer = http_request(
            self.port, method, f"/api/{self.user}{path}", token=self.token, body=payload, connection=self.connection
        )
        if status != expected:
            raise RuntimeError(f"{method} {path} answered {status}: {answer[:300]!r}")
        return answer


def one_by_one(client: Client) -> list[str]:
    return [json.loads(client.send("POST", "/tasks", {"title": f"Task {n}"}, 201))["id"] for n in range(TASKS)]


def in_one_batch(client: Client) -> list[str]:
    operations = [{"op": "create", "body": {"title": f"Task {n}"}} for n in range(TASKS)]
    results = json.loads(client.send("POST", "/batch", {"operations": operations}, 200))["results"]
    return [result["body"]["id"] for result in results]


def delete_one_by_one(client: Client, ids: list[str]) -> None:
    for task_id in ids:
        client.send("DELETE", f"/tasks/{task_id}", None, 204)


def delete_in_one_batch(client: Client, ids: list[str]) -> None:
    client.send("POST", "/batch", {"operations": [{"op": "delete", "id": task_id} for task_id in ids]}, 200)


def measured(server: Server, postgres: int, work: Callable[[], object]) -> tuple[float, float, float]:
    """Wall, server CPU and PostgreSQL CPU seconds of `work`."""
    cpu, pg, wall = tree_cpu_seconds(server.pid), tree_cpu_seconds(postgres), time.perf_counter()
    work()
    return time.perf_counter() - wall, tree_cpu_seconds(server.pid) - cpu, tree_cpu_seconds(postgres) - pg


def main() -> None:
    if not 1 <= TASKS <= 100:
        raise SystemExit("BENCH_BATCH_TASKS must be 1 to 100")
    database = f"todo_bench_batch_{secrets.token_hex(6)}"
    admin = psycopg.connect(SERVER_URL, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            stack = Stack(Path(scratch))
            url = _with_database(SERVER_URL, database)
            stack.migrate(url)
            server = stack.start_todo("todo", url, workers=1)
            try:
                run(stack, server, postmaster_pid())
            finally:
                server.stop()
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.close()


def run(stack: Stack, server: Server, postgres: int) -> None:
    samples: dict[str, list[tuple[float, float, float]]] = {}
    for round_number in range(ROUNDS + 1):  # round 0 warms up, and is not counted
        for way, create, delete in (
            ("one by one", one_by_one, delete_one_by_one),
            ("one batch", in_one_batch, delete_in_one_batch),
        ):
            user = f"bench-{secrets.token_hex(4)}"
            client = Client(server, stack.token(user), user)
            ids: list[str] = []
            creating = measured(server, postgres, lambda: ids.extend(create(client)))  # noqa: B023
            deleting = measured(server, postgres, lambda: delete(client, ids))  # noqa: B023
            if round_number:
                samples.setdefault(f"create {TASKS}, {way}", []).append(creating)
                samples.setdefault(f"delete {TASKS}, {way}", []).append(deleting)
    print(f"# {TASKS} tasks one request each or in one batch: medians of {ROUNDS} rounds, per task\n")
    print("| scenario | wall / task | server CPU / task | PostgreSQL CPU / task |")
    print("|---|---|---|---|")
    for scenario, runs in samples.items():
        wall, cpu, pg = (statistics.median(run[i] for run in runs) / TASKS * 1e6 for i in range(3))
        print(f"| {scenario} | {wall:,.0f} µs | {cpu:,.0f} µs | {pg:,.0f} µs |")


if __name__ == "__main__":
    main()
