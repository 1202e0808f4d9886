"""`python -m bench.notify` (~40 s): what sending NOTIFY inside a writing transaction costs its
commits, measured on PostgreSQL alone (no web server in the way).

Clients commit small writes of 100 users as the service does (take the user's next change
number, insert a row, announce it; statements pipelined, one round trip), the announcement sent
either before COMMIT, inside the transaction (as the service did until it moved it), or after
COMMIT as a transaction of its own (as it does now), or not at all (the floor); the three
alternate in rounds. Prints
commits per second and commit latency (p50, p99) of each; writes nothing.

Settings: BENCH_SECONDS (5) per round, BENCH_ROUNDS (3), BENCH_CLIENTS (32),
TODO_BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/postgres: the run makes a database
of its own there and drops it).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import statistics
import time
import urllib.parse

import psycopg
from psycopg import sql

USERS = 100
_TAKE = "UPDATE counters SET seq = seq + 1 WHERE user_id = %s"
_WRITE = "INSERT INTO written (user_id, seq, body) SELECT user_id, seq, %s FROM counters WHERE user_id = %s"
_ANNOUNCE = "SELECT pg_notify('bench', (SELECT seq FROM counters WHERE user_id = %s)::text || ':' || %s)"


async def _client(url: str, mode: str, until: float, latencies: list[float]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while time.monotonic() < until:
            user = f"user-{random.randrange(USERS)}"
            started = time.perf_counter()
            async with connection.pipeline() as pipeline:
                await connection.execute("BEGIN")
                await connection.execute(_TAKE, [user])
                await connection.execute(_WRITE, ["x" * 200, user])
                if mode == "inside":
                    await connection.execute(_ANNOUNCE, [user, user])
                await connection.execute("COMMIT")
                if mode == "after":
                    await connection.execute(_ANNOUNCE, [user, user])
                await pipeline.sync()
            latencies.append(time.perf_counter() - started)


async def _round(url: str, mode: str, seconds: float, clients: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(url, mode, until, latencies) for _ in range(clients)))
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, quantiles[49] * 1000, quantiles[98] * 1000


async def _run(url: str, seconds: float, rounds: int, clients: int) -> None:
    results: dict[str, list[tuple[float, float, float]]] = {"inside": [], "after": [], "none": []}
    for number in range(1, rounds + 1):
        for mode in results:
            measured = await _round(url, mode, seconds, clients)
            results[mode].append(measured)
            print(f"round {number} NOTIFY {mode:<6} {measured[0]:8,.0f} commits/s  p50 {measured[1]:6.1f} ms  "
                  f"p99 {measured[2]:6.1f} ms", flush=True)  # fmt: skip
    for mode, rows in results.items():
        median = [statistics.median(row[i] for row in rows) for i in range(3)]
        print(f"median NOTIFY {mode:<6} {median[0]:8,.0f} commits/s  p50 {median[1]:6.1f} ms  p99 {median[2]:6.1f} ms")


def main() -> None:
    env = os.environ.get
    server = env("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    seconds, rounds, clients = (
        float(env("BENCH_SECONDS", "5")),
        int(env("BENCH_ROUNDS", "3")),
        int(env("BENCH_CLIENTS", "32")),
    )
    database = f"todo_bench_notify_{secrets.token_hex(4)}"
    url = urllib.parse.urlsplit(server)._replace(path="/" + database).geturl()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE counters (user_id text PRIMARY KEY, seq bigint NOT NULL)")
            connection.execute("CREATE TABLE written (user_id text, seq bigint, body text, PRIMARY KEY (user_id, seq))")
            connection.execute("INSERT INTO counters SELECT 'user-' || n, 0 FROM generate_series(0, %s) n", [USERS - 1])
        print(f"{clients} clients, {USERS} users, {rounds} rounds of {seconds:.0f} s each way", flush=True)
        asyncio.run(_run(url, seconds, rounds, clients))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
