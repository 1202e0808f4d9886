"""CPU time of one calendar request by the size of the account: `python -m bench.calendar`.

In one process, on a fresh SQLite file or (with TODO_BENCH_DATABASE_URL) a PostgreSQL
database: seeds one user with N tasks (a third repeating in Europe/Berlin with a reminder,
tags on all), then times GET /api/{user}/calendar.ics through the real app (in-process ASGI,
so the figure includes the small cost of the test client). CPU time (`time.process_time`) is
steadier than wall time on a shared machine. Prints one line per size.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

import httpx

from todo_adapters.auth import mint_token
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.settings import Settings

SECRET = "bench-secret-that-is-long-enough-for-hs256"
SIZES = (10, 100, 1000)
ROUNDS = 5


async def measure(url: str) -> None:
    app = create_app(Settings(database_url=url, jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for size in SIZES:
                user = f"bench-{size}-{os.getpid()}"
                headers = {"Authorization": f"Bearer {mint_token(SECRET, user)}"}
                for n in range(size):
                    task = {"title": f"Task {n}", "tags": ["home", f"t{n % 7}"], "priority": "medium"}
                    if n % 3 == 0:
                        task |= {
                            "due_at": "2026-03-27T08:00:00Z",
                            "remind_at": "2026-03-27T07:30:00Z",
                            "recurrence": "FREQ=WEEKLY;BYDAY=FR",
                            "time_zone": "Europe/Berlin",
                        }
                    assert (await http.post(f"/api/{user}/tasks", json=task, headers=headers)).status_code == 201
                cpu, wall, size_bytes = [], [], 0
                for _ in range(ROUNDS):
                    started_cpu, started = time.process_time(), time.perf_counter()
                    response = await http.get(f"/api/{user}/calendar.ics", headers=headers)
                    cpu.append(time.process_time() - started_cpu)
                    wall.append(time.perf_counter() - started)
                    assert response.status_code == 200
                    size_bytes = len(response.content)
                print(
                    f"{size:>5} tasks: CPU {statistics.median(cpu) * 1000:8.1f} ms "
                    f"({statistics.median(cpu) / size * 1e6:6.0f} µs/task), "
                    f"wall {statistics.median(wall) * 1000:8.1f} ms,"
                    f" {size_bytes / 1024:7.0f} KiB"
                )


def main() -> None:
    url = os.environ.get("TODO_BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    migrate(url)
    print(f"calendar.ics on {url.split(':', 1)[0]}, median of {ROUNDS}", file=sys.stderr)
    asyncio.run(measure(url))


if __name__ == "__main__":
    main()
