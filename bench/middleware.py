"""What the request telemetry (metrics, request id, the log line per request) costs a list request.

`python -m bench.middleware` (about 2 minutes) serves one PostgreSQL database with three builds of
`todo serve` (2 workers, real JWT check), alternating them in each round, and lists 50 tasks with
wrk (`-t2 -c64`):

- `baseline`: the code of BENCH_BASELINE_REF (default: where this branch left `main`, so that both
  need the same packages), exported with `git archive`;
- `metrics`: this checkout with TODO_ACCESS_LOG=0 (metrics and request id, no log line);
- `metrics+log`: this checkout as configured by default (a JSON line per request, to a file).

It prints the server CPU time per request of each (from /proc, medians over the rounds) and the
difference to the baseline. Settings: BENCH_SECONDS (8), BENCH_ROUNDS (3),
TODO_BENCH_DATABASE_URL (the local server as postgres).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import uuid
from io import BytesIO
from pathlib import Path

import psycopg

from bench.loadgen import measure
from bench.procs import free_port, http_request, postmaster_pid, start_server
from bench.run import REPO, Stack, _with_database, log

USER = "bench-middleware"
TASKS = 50
THREADS, CONNECTIONS = 2, 64


def main() -> int:
    seconds = float(os.environ.get("BENCH_SECONDS", "8"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    server_url = os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    reference = os.environ.get("BENCH_BASELINE_REF") or _fork_point()
    database = f"todo_bench_mw_{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="todo-bench-mw-") as scratch_name,
        psycopg.connect(server_url, autocommit=True) as admin,
    ):
        scratch = Path(scratch_name)
        baseline = _export(reference, scratch / "baseline")
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            return _run(Stack(scratch), _with_database(server_url, database), baseline, seconds, rounds)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _fork_point() -> str:
    found = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=REPO, capture_output=True, text=True, check=True)
    return found.stdout.strip()


def _export(reference: str, target: Path) -> Path:
    archive = subprocess.run(["git", "archive", reference], cwd=REPO, capture_output=True, check=True).stdout
    target.mkdir()
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _run(stack: Stack, database_url: str, baseline: Path, seconds: float, rounds: int) -> int:
    stack.migrate(database_url)
    token = stack.token(USER)
    builds = {
        "baseline": {"PYTHONPATH": str(baseline)},
        "metrics": {"TODO_ACCESS_LOG": "0"},
        "metrics+log": {},
    }
    results: dict[str, list[float]] = {name: [] for name in builds}
    pg_pid = postmaster_pid()
    for round_number in range(1, rounds + 1):
        for name, extra in builds.items():
            port = free_port()
            server = start_server(
                name,
                [sys.executable, "-m", "todo_api", "serve"],
                env={**stack.todo_env(database_url, port, workers=2), **extra},
                cwd=stack.scratch,
                log_path=stack.scratch / f"{name}-{round_number}.log",
                port=port,
            )
            try:
                if round_number == 1 and name == "baseline":
                    _seed(port, token)
                # The build is the one meant: only this checkout serves /metrics.
                expected = 404 if name == "baseline" else 200
                assert http_request(port, "GET", "/metrics")[0] == expected, f"{name} is not the build meant"
                url = f"http://127.0.0.1:{port}/api/{USER}/tasks?status=pending&limit=50"
                measurement, _ = measure(
                    "list-50",
                    name,
                    round_number,
                    url,
                    "get.lua",
                    server_pid=server.pid,
                    pg_pid=pg_pid,
                    threads=THREADS,
                    connections=CONNECTIONS,
                    seconds=seconds,
                    warmup_seconds=2,
                    env={"BENCH_TOKEN": token},
                )
            finally:
                server.stop()
            assert measurement.server_us_per_request is not None
            results[name].append(measurement.server_us_per_request)
            log(
                f"round {round_number} {name}: {measurement.rps:,.0f} req/s, "
                f"{measurement.server_us_per_request:,.0f} µs server CPU per request, "
                f"other load {measurement.other_cpu_share or 0:.0%}"
            )
    base = statistics.median(results["baseline"])
    print(f"list-50, server CPU per request, median of {rounds} rounds of {seconds:g} s (wrk -t2 -c64, 2 workers):")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"  {name:12} {median:7,.0f} µs  ({median - base:+5,.0f} µs, {median / base - 1:+.1%})  "
            f"rounds: {', '.join(f'{value:,.0f}' for value in values)}"
        )
    return 0


def _seed(port: int, token: str) -> None:
    for number in range(TASKS):
        body = f'{{"title": "task {number}", "tags": ["work"], "priority": "high"}}'.encode()
        status, _ = http_request(port, "POST", f"/api/{USER}/tasks", token=token, body=body)
        assert status == 201, status


if __name__ == "__main__":
    sys.exit(main())
