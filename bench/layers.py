"""What each layer of a list request costs: CPU µs per request, in one process, layer by layer.

`python -m bench.layers` (about a minute) makes a PostgreSQL database of its own, migrates it,
builds the real app in this process (`create_app`, settings as `make bench` gives `todo serve`:
JSON access log on, metrics in multiprocess mode, real JWT check), creates 50 open tasks and
asks for them as the list-50 scenario does (`GET /api/{user}/tasks?status=pending&limit=50`),
calling the ASGI app directly, one request after another, N times. No server, no socket: what it
reports is the app's own CPU time (`time.process_time()`), not uvicorn's.

The request goes through ever more of the real pipeline, from the inside out:

- `bare ASGI`: a callable that sends the page the app answered (the floor: the driver itself);
- `+ <layer>`: each middleware of the app's stack, as FastAPI built it (its own and ours, the
  same configured instances), wrapped one by one around the bare callable, innermost first;
- `full app`: the app itself, with routing, dependencies, the route, PostgreSQL and the JSON;
- `route alone`: the router with the request already authenticated (no middleware at all);
- `query + JSON`: the list use case and the serialisation of its page, called directly.

Each layer's cost is the difference to the one inside it. Rounds alternate the layers; the
report is the median of the rounds. Settings: BENCH_LAYER_REQUESTS (2000 per layer and round),
BENCH_ROUNDS (3), TODO_BENCH_DATABASE_URL (the local server as postgres). With `--profile FILE`
the full app's requests of the last round are profiled with cProfile into FILE (and the top
functions printed; cProfile's times are wall-clock). With `--json FILE` the results are written
as JSON for `make bench`. With `--baseline REF` (a git revision) the same is measured for the
code of REF too, in processes of their own, the two alternating round by round, and printed
side by side: CPU time is steadier than throughput on a shared machine, and steadier still
when both sides share each minute of it.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import logging
import logging.config
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

USER = "bench-layers"
TASKS = 50
PATH = f"/api/{USER}/tasks"
QUERY = b"status=pending&limit=50"
#: The layers FastAPI puts inside every middleware, which a route cannot run without.
ROUTING_LAYERS = frozenset({"ExceptionMiddleware", "AsyncExitStackMiddleware"})
ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_LAYER_REQUESTS", "2000")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    parser.add_argument(
        "--server-url",
        default=os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the full app's last round here")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--baseline", help="a git revision to measure side by side with this checkout")
    args = parser.parse_args(argv)
    if args.baseline:
        return _side_by_side(args.baseline, args.requests, args.rounds, args.server_url, args.json)
    # prometheus-client picks its multiprocess mode when it is imported, as in `todo serve`'s workers.
    metrics_directory = tempfile.mkdtemp(prefix="todo-bench-layers-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_directory
    import psycopg
    import uvloop

    database = f"todo_bench_layers_{secrets.token_hex(4)}"
    with psycopg.connect(args.server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        url = urllib.parse.urlsplit(args.server_url)._replace(path="/" + database).geturl()
        results = uvloop.run(_measure_all(url, args.requests, args.rounds, args.profile))
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(console(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _side_by_side(reference: str, requests: int, rounds: int, server_url: str, target: Path | None) -> int:
    """This checkout and `reference`, each round a process of each, alternating."""
    import subprocess
    import tarfile
    from io import BytesIO

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="todo-bench-layers-") as scratch_name:
        scratch = Path(scratch_name)
        archive = subprocess.run(["git", "archive", reference], cwd=repo, capture_output=True, check=True).stdout
        baseline = scratch / "baseline"
        baseline.mkdir()
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(baseline, filter=_code_only)
        # The same measurement on both sides: this file, whatever REF's bench holds.
        (baseline / "bench" / "layers.py").write_text(Path(__file__).read_text())
        trees = {f"baseline ({reference})": baseline, "this checkout": repo}
        measured: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for round_number in range(1, rounds + 1):
            for name, tree in trees.items():
                output = scratch / f"{round_number}.json"
                env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_LAYER_REQUESTS": str(requests)}
                argv = [sys.executable, "-m", "bench.layers", "--rounds", "1", "--json", str(output)]
                subprocess.run([*argv, "--server-url", server_url], env=env, cwd=tree, check=True, timeout=900)
                measured[name].append(json.loads(output.read_text()))
    combined = {name: _median_of(runs) for name, runs in measured.items()}
    print("\n\n".join(f"{name}:\n{console(results)}" for name, results in combined.items()))
    if target is not None:
        target.write_text(json.dumps(combined, indent=2))
    return 0


def _code_only(member: Any, path: str) -> Any:
    """tarfile's `data` filter, leaving out links out of the tree (a committed `.venv` link)."""
    import tarfile

    if member.issym() and member.linkname.startswith("/"):
        return None
    return tarfile.data_filter(member, path)


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    layers = {name: statistics.median(run["layers"][name] for run in runs) for name in runs[0]["layers"]}
    return {**runs[0], "rounds": len(runs), "layers": layers, "summary": summary(layers)}


def summary(layers: dict[str, float]) -> dict[str, float]:
    """The pipeline in four numbers: the app, its middleware, the route without them, and the
    query and JSON the route exists for."""
    stacked = [value for name, value in layers.items() if name.startswith("+ ")]
    return {
        "full app": layers["full app"],
        "middleware": (stacked[-1] if stacked else layers["bare ASGI"]) - layers["bare ASGI"],
        "route alone": layers["route alone"],
        "query + JSON": layers["query + JSON"],
    }


def _settings(database_url: str) -> Any:
    from todo_api.settings import Settings

    return Settings(
        database_url=database_url,
        jwt_secret=secrets.token_urlsafe(48),
        cursor_secret=secrets.token_urlsafe(32),
        rate_limits=os.environ.get("BENCH_RATE_LIMITS", "none"),
        _env_file=None,  # type: ignore[call-arg]
    )


async def _measure_all(database_url: str, requests: int, rounds: int, profile: Path | None) -> dict[str, Any]:
    import subprocess

    from todo_adapters.auth import mint_token
    from todo_api.app import create_app
    from todo_api.logs import logging_config

    settings = _settings(database_url)
    env = {**os.environ, "TODO_DATABASE_URL": database_url, "TODO_DEV_MODE": "1"}
    subprocess.run([sys.executable, "-m", "todo_api", "migrate"], env=env, check=True, timeout=300, capture_output=True)
    # The server's logging (JSON lines), into a file as `make bench` sends a server's stderr.
    log_file = tempfile.NamedTemporaryFile("w", prefix="todo-bench-layers-", suffix=".log", delete=False)  # noqa: SIM115
    config = logging_config(settings)
    logging.config.dictConfig(config)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    token = mint_token(settings.jwt_secret.get_secret_value(), USER, ttl_seconds=4 * 3600)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await _seed(app, token)
        probe = _scope("GET", PATH, QUERY, token)
        status, headers, body = await _call(app, probe)
        assert status == 200 and len(json.loads(body)) == TASKS, (status, body[:300])
        layers = _layers(app, token, probe["route"], status, headers, body)
        medians = await _rounds(layers, requests, rounds)
        if profile is not None:
            await _profile(layers["full app"], requests, profile)
    log_file.close()
    os.unlink(log_file.name)
    return {
        "scenario": "list-50",
        "requests_per_round": requests,
        "rounds": rounds,
        "page_bytes": len(body),
        "layers": medians,
        "summary": summary(medians),
    }


def _scope(method: str, path: str, query: bytes, token: str, body: bytes = b"") -> dict[str, Any]:
    """A request as uvicorn (httptools) hands it to the app."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"wrk"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "state": {},
    }


async def _call(app: ASGI, scope: dict[str, Any], body: bytes = b"") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], list(start.get("headers", [])), b"".join(m.get("body", b"") for m in sent[1:])


async def _seed(app: ASGI, token: str) -> None:
    for number in range(TASKS):
        body = json.dumps({"title": f"task {number}", "tags": ["work", "home"], "priority": "high"}).encode()
        status, _, answer = await _call(app, _scope("POST", PATH, b"", token, body), body)
        assert status == 201, (status, answer[:300])


def _layers(
    app: Any, token: str, list_route: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> dict[str, Any]:
    """Name → an async function that makes one request through that much of the pipeline."""
    from todo_api.representation import json_bytes
    from todo_api.schemas.tasks import TaskListParams
    from todo_core.use_cases import tasks as use_cases

    # What the bare callable answers: the app's own answer, minus what the layers add themselves.
    added_by_layers = {b"x-request-id", b"ratelimit", b"ratelimit-policy"}
    page_headers = [(name, value) for name, value in headers if name not in added_by_layers]

    async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = list_route  # as the router leaves it for the layers outside
        await send({"type": "http.response.start", "status": status, "headers": page_headers})
        await send({"type": "http.response.body", "body": body})

    chain = _middleware_chain(app)
    requests: dict[str, Any] = {"bare ASGI": _requester(bare, token)}
    inner: Any = bare
    for layer in reversed(chain):
        wrapped = copy.copy(layer)
        wrapped.app = inner
        inner = wrapped
        requests[f"+ {type(layer).__name__}"] = _requester(inner, token)
    requests["full app"] = _requester(app, token)

    # FastAPI's own innermost layers (its exception handlers and the exit stack a route needs),
    # around the router: everything but the middleware.
    routed: Any = app.router
    for layer in reversed(chain):
        if type(layer).__name__ in ROUTING_LAYERS:
            wrapped = copy.copy(layer)
            wrapped.app = routed
            routed = wrapped
    state = {"user_id": USER, "token_valid_until": time.time() + 3600}
    requests["route alone"] = _requester(routed, token, state=state, app=app)
    container = app.state.container
    views = container.task_views()
    query = TaskListParams(status="pending", limit=50).task_query()

    async def query_and_json() -> None:
        page = await use_cases.list_tasks(views, USER, query)
        json_bytes(page.items)

    requests["query + JSON"] = query_and_json
    return requests


def _middleware_chain(app: Any) -> list[Any]:
    """The app's middleware, outermost first, down to (not including) its router."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    chain, layer = [], app.middleware_stack
    while layer is not app.router:
        chain.append(layer)
        layer = layer.app
    return chain


def _requester(
    asgi: Any, token: str, state: dict[str, Any] | None = None, app: Any = None
) -> Callable[[], Awaitable[None]]:
    async def request() -> None:
        scope = _scope("GET", PATH, QUERY, token)
        if state is not None:
            scope["state"] = dict(state)
        if app is not None:  # as the app sets it, for the dependencies that find its container
            scope["app"] = app
        status, _, _ = await _call(asgi, scope)
        if status != 200:
            raise RuntimeError(f"a layer answered {status}")

    return request


async def _cpu_per_request(request: Callable[[], Awaitable[None]], count: int) -> float:
    for _ in range(min(200, count)):  # warm: caches, pool, prepared statements
        await request()
    started = time.process_time()
    for _ in range(count):
        await request()
    return (time.process_time() - started) / count * 1e6


async def _rounds(layers: dict[str, Any], requests: int, rounds: int) -> dict[str, float]:
    measured: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(rounds):
        for name, request in layers.items():
            measured[name].append(await _cpu_per_request(request, requests))
    return {name: statistics.median(values) for name, values in measured.items()}


async def _profile(request: Callable[[], Awaitable[None]], requests: int, target: Path) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        await request()
    profiler.disable()
    profiler.dump_stats(target)
    pstats.Stats(str(target)).sort_stats("tottime").print_stats(35)


def console(results: dict[str, Any]) -> str:
    """The layers as a table: CPU per request, cumulative and each layer's own."""
    layers: dict[str, float] = results["layers"]
    lines = [
        f"list-50 in one process, CPU µs per request (median of {results['rounds']} rounds of "
        f"{results['requests_per_round']} requests; page {results['page_bytes']:,} bytes):",
        f"  {'layer':<34} {'total':>8} {'own':>8}",
    ]
    previous = None
    for name, value in layers.items():
        if name in ("route alone", "query + JSON"):
            lines.append(f"  {name:<34} {value:8.0f}")
            continue
        own = "" if previous is None else f"{value - previous:+8.0f}"
        lines.append(f"  {name:<34} {value:8.0f} {own:>8}")
        previous = value
    middleware = results["summary"]["middleware"]
    lines.append(f"  {'(all middleware)':<34} {middleware:8.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
