"""Prepared statements or not: the cost of `TODO_DATABASE_POOLER=transaction` on the list and create routes.

`python -m bench.prepared` (or `make bench-prepared`) seeds a PostgreSQL database of its own (the
users of `make bench`, without its 10,000- and 100,000-task users), serves it with two real
`todo serve` processes (2 workers each) side by side, straight on PostgreSQL: *prepared*
(`TODO_DATABASE_POOLER=none`, the default: psycopg prepares a statement after its fifth run)
and *unprepared* (`TODO_DATABASE_POOLER=transaction`: every statement parsed and planned each
time, as it must be behind PgBouncer in transaction mode). It loads them in alternating rounds
with wrk (list-50 and create, as `make bench` does), reads CPU time per request of each
server's process tree and of PostgreSQL from /proc, and writes
`bench/results/prepared/<date>.json` and `.md`.

Settings: those of `python -m bench.run` (BENCH_SECONDS, BENCH_ROUNDS, BENCH_USERS,
TODO_BENCH_DATABASE_URL, ...); BENCH_ROUNDS defaults to 3 here.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from bench.loadgen import Measurement
from bench.procs import Server, free_port, postmaster_pid, start_server
from bench.run import LIST_50, U50, Config, Stack, _measure_logged, _with_database, log, machine_facts
from bench.seed import Plan, seed

MODES = {"prepared": "none", "unprepared": "transaction"}
WRITERS = {"prepared": "bench-writer", "unprepared": "bench-writer-naive"}


def _start(stack: Stack, name: str, database_url: str, pooler: str) -> Server:
    port = free_port()
    server = start_server(
        name,
        [str(stack.bin / "todo"), "serve"],
        env={**stack.todo_env(database_url, port, workers=2), "TODO_DATABASE_POOLER": pooler},
        cwd=stack.scratch,
        log_path=stack.scratch / f"{name}.log",
        port=port,
    )
    stack.servers.append(server)
    return server


def _median(runs: list[Measurement], attribute: str) -> float:
    values = [getattr(run, attribute) for run in runs if getattr(run, attribute) is not None]
    return statistics.median(values) if values else float("nan")


def _report(runs: list[Measurement], config: Config) -> str:
    lines = [
        f"# Prepared statements or not ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`python -m bench.prepared`: wrk -t{config.threads} -c{config.connections}, {config.seconds:g} s per run, "
        f"medians of {config.rounds} alternating rounds; CPU time per request from /proc.",
        "",
        "| scenario | server | req/s | p50 | p99 | server CPU / request | PostgreSQL CPU / request | other load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ("list-50", "create"):
        for name in MODES:
            mine = [run for run in runs if run.scenario == scenario and run.server == name]
            other = max((run.other_cpu_share or 0.0) for run in mine)
            lines.append(
                f"| {scenario} | {name} | {_median(mine, 'rps'):,.0f} | {_median(mine, 'p50_us') / 1000:.1f} ms "
                f"| {_median(mine, 'p99_us') / 1000:.1f} ms | {_median(mine, 'server_us_per_request'):,.0f} µs "
                f"| {_median(mine, 'pg_us_per_request'):,.0f} µs | up to {other:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    os.environ.setdefault("BENCH_ROUNDS", "3")
    config = Config.parse(sys.argv[1:])
    database = f"todo_bench_{secrets.token_hex(4)}"
    database_url = _with_database(config.server_url, database)
    runs: list[Measurement] = []
    with (
        tempfile.TemporaryDirectory(prefix="todo-bench-") as scratch,
        psycopg.connect(config.server_url, autocommit=True) as admin,
    ):
        stack = Stack(Path(scratch))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        data_directory = admin.execute("SHOW data_directory").fetchone()
        try:
            stack.migrate(database_url)
            seeded = seed(database_url, Plan(general_users=config.users, measured={U50: 50}))
            log(f"seeded {seeded.tasks} tasks of {seeded.users} users")
            pg_pid = postmaster_pid(data_directory[0] if data_directory else None)
            servers = {name: _start(stack, name, database_url, pooler) for name, pooler in MODES.items()}
            try:
                for round_number in range(1, config.rounds + 1):
                    for name, server in servers.items():
                        path, token = LIST_50.format(user=U50), stack.token(U50)
                        runs.append(
                            _measure_logged(
                                "list-50", name, server, round_number, path, "get.lua",
                                config=config, pg_pid=pg_pid, token=token,
                            )[0]
                        )  # fmt: skip
                    for name, server in servers.items():
                        writer = WRITERS[name]
                        path = f"/api/{writer}/tasks"
                        runs.append(
                            _measure_logged(
                                "create", name, server, round_number, path, "create.lua",
                                config=config, pg_pid=pg_pid, args=[path, f"bm{secrets.token_hex(4)}"],
                                token=stack.token(writer),
                            )[0]
                        )  # fmt: skip
            finally:
                for server in servers.values():
                    server.stop()
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    folder = config.results_dir / "prepared"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{datetime.now(UTC):%Y-%m-%d}"
    stem.with_suffix(".json").write_text(
        json.dumps({"machine": machine_facts(), "runs": [asdict(run) for run in runs]}, indent=2)
    )
    report = _report(runs, config)
    stem.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
