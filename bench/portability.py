"""Export and import of one large account, in one process on a fresh PostgreSQL database:
wall and CPU time of each, the export's size and the process's peak memory before and after
the export (`python -m bench.portability [TASKS]`, default 20,000; needs TODO_BENCH_DATABASE_URL
or the local server as postgres).

The export streams: the peak resident memory should not grow with the account. The import is
held whole (parsed, checked, then written in one transaction)."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
import uuid

import httpx
import orjson
import psycopg

from todo_adapters.auth import mint_token
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.settings import Settings

SECRET = "bench-secret-that-is-long-enough-for-hs256-signing"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def document(count: int) -> dict[str, object]:
    tasks: list[dict[str, object]] = []
    for n in range(count // 3):
        parent = str(uuid.UUID(int=n + 1))
        tasks.append(
            {"id": parent, "title": f"Task {n}", "tags": ["home", f"t{n % 9}"], "description": "A short note."}
        )
        tasks += [{"id": str(uuid.uuid4()), "title": f"Step {n}.{k}", "parent_id": parent} for k in range(2)]
    return {"format": "todo-export", "version": 1, "tasks": tasks}


async def run(url: str, count: int) -> None:
    settings = Settings(
        database_url=url,
        jwt_secret=SECRET,
        max_import_bytes=200_000_000,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    user = "bench-portability"
    headers = {"Authorization": f"Bearer {mint_token(SECRET, user)}"}
    body = orjson.dumps(document(count))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as http,
    ):
        print(f"tasks {count}, import document {len(body) / 1e6:.1f} MB, peak before {_peak_mb():.0f} MB")
        wall, cpu = time.perf_counter(), _cpu()
        response = await http.post(
            f"/api/{user}/import", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text[:500]
        print(f"import: {time.perf_counter() - wall:.1f} s wall, {_cpu() - cpu:.1f} s CPU, peak {_peak_mb():.0f} MB")
        del body, response
        wall, cpu, size = time.perf_counter(), _cpu(), 0
        async with http.stream("GET", f"/api/{user}/export", headers=headers) as streamed:
            async for chunk in streamed.aiter_bytes():
                size += len(chunk)
        print(
            f"export: {size / 1e6:.1f} MB, {time.perf_counter() - wall:.1f} s wall, {_cpu() - cpu:.1f} s CPU, "
            f"peak {_peak_mb():.0f} MB"
        )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    server = os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"todo_bench_portability_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            database_url = "postgresql+psycopg://" + server.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
            migrate(database_url)
            asyncio.run(run(database_url, count))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
