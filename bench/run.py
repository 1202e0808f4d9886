"""`make bench`: the todo server against two baselines, on PostgreSQL and on SQLite.

One run, end to end: make a PostgreSQL database of its own, migrate it with `todo migrate`,
seed it, serve it with the real `todo serve` (2 workers, real JWTs), and next to it a
*ceiling* (FastAPI answering from memory) and a *naive* app (FastAPI + SQLModel as the
tutorials write it); load each with wrk in alternating rounds, reading CPU time per request
of each server's process tree and of PostgreSQL from /proc; measure how list latency grows
with a user's task count, capture the plans PostgreSQL runs, then do the same on the embedded
SQLite default. Results go to bench/results/<date>.json, .md and -list-latency.png.

Everything is bounded: servers run in their own process groups and are killed on the way out,
the database is dropped even on failure, and every wait has a timeout.

Settings (environment, or the flags of `python -m bench.run --help`):
    BENCH_SECONDS (8), BENCH_ROUNDS (2), BENCH_WARMUP_SECONDS, BENCH_GROWTH_SECONDS,
    BENCH_USERS (2000), BENCH_DEEP_PAGES (100), BENCH_RESULTS_DIR (bench/results),
    BENCH_ONLY (comma-separated scenarios, e.g. `create-spread`: only those run; unset: all;
    `layers` is what each layer of a list request costs, `python -m bench.layers`;
    `abuse` or `abuse-greedy`, …: the abuse scenarios of bench/abuse.py, which write their own results),
    BENCH_ABUSE_SECONDS (15), BENCH_ABUSE_BASELINE_SECONDS (5): see bench/abuse.py,
    TODO_BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/postgres: the server to use),
    BENCH_RATE_LIMITS (none: the servers' TODO_RATE_LIMITS; the bench measures throughput, and one
    user's list at 1,800 req/s would be the limiter's to refuse)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psycopg
from psycopg import sql

from bench import abuse, calendar_load, report
from bench.loadgen import Measurement, WrkResult, measure, other_share, run_wrk
from bench.procs import (
    Server,
    children_cpu_seconds,
    command_line,
    descendants,
    free_port,
    http_request,
    machine_busy_seconds,
    postmaster_pid,
    rss_kib,
    start_server,
    tree_cpu_seconds,
)
from bench.seed import Plan, count_marked, sample_tasks, seed, task_states, task_states_of

REPO = Path(__file__).resolve().parent.parent
SORTS = [
    "created_at", "-created_at", "updated_at", "-updated_at", "due_at", "-due_at",
    "priority", "-priority", "title", "-title",
]  # fmt: skip
LIST_50 = "/api/{user}/tasks?status=pending&limit=50"
U50, U10K, U100K = "bench-u50", "bench-u10k", "bench-u100k"
TODO_WRITER, NAIVE_WRITER = "bench-writer", "bench-writer-naive"
TAG = "work"
MIXED_USERS = 100
#: Creates spread over this many users, each with a token of its own (`create-spread`).
SPREAD_USERS = 100
#: Scenarios that read the seeded users' tasks (the others need no seed).
SEEDED = frozenset(
    {"list-50", "list-tag-sort", "list-deep", "get", "growth", "complete", "mixed", "explain", "create-100k"}
)
SQLITE_USER, SQLITE_WRITER, SQLITE_TASKS = "sqlite-user", "sqlite-writer", 200
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Config:
    seconds: float
    rounds: int
    warmup_seconds: float
    growth_seconds: float
    threads: int
    connections: int
    users: int
    deep_pages: int
    deep_pages_10k: int
    server_url: str
    results_dir: Path
    skip_sqlite: bool
    #: The scenarios to run; empty: every one.
    only: frozenset[str] = frozenset()

    def wants(self, *scenarios: str) -> bool:
        """Whether any of these scenarios is to run."""
        return not self.only or not self.only.isdisjoint(scenarios)

    @classmethod
    def parse(cls, argv: Sequence[str] | None) -> Config:
        env = os.environ.get
        parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
        parser.add_argument("--seconds", type=float, default=float(env("BENCH_SECONDS", "8")))
        parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "2")))
        parser.add_argument("--warmup-seconds", type=float, default=_optional_float(env("BENCH_WARMUP_SECONDS")))
        parser.add_argument("--growth-seconds", type=float, default=_optional_float(env("BENCH_GROWTH_SECONDS")))
        parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "2")))
        parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "64")))
        parser.add_argument("--users", type=int, default=int(env("BENCH_USERS", "2000")))
        parser.add_argument("--deep-pages", type=int, default=int(env("BENCH_DEEP_PAGES", "100")))
        parser.add_argument(
            "--server-url",
            default=env("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
            help="a PostgreSQL server URL; the run creates and drops a database of its own on it",
        )
        parser.add_argument(
            "--results-dir", type=Path, default=Path(env("BENCH_RESULTS_DIR", str(REPO / "bench" / "results")))
        )
        parser.add_argument("--skip-sqlite", action="store_true", default=env("BENCH_SKIP_SQLITE") == "1")
        parser.add_argument(
            "--only", default=env("BENCH_ONLY", ""), help="comma-separated scenarios to run (default: all)"
        )
        args = parser.parse_args(argv)
        seconds = max(1.0, args.seconds)
        return cls(
            seconds=seconds,
            rounds=max(1, args.rounds),
            warmup_seconds=args.warmup_seconds if args.warmup_seconds is not None else min(2.0, max(1.0, seconds / 4)),
            growth_seconds=(
                args.growth_seconds if args.growth_seconds is not None else max(1.0, min(3.0, round(seconds * 3 / 8)))
            ),
            threads=args.threads,
            connections=args.connections,
            users=args.users,
            deep_pages=args.deep_pages,
            deep_pages_10k=20,
            server_url=args.server_url,
            results_dir=args.results_dir,
            skip_sqlite=args.skip_sqlite,
            only=frozenset(name.strip() for name in args.only.split(",") if name.strip()),
        )


def _optional_float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass
class CreateCheck:
    """Every create a client saw acknowledged (201) must be stored. Rows beyond that are fine:
    requests still in flight when wrk stopped were stored but never acknowledged."""

    scenario: str
    server: str
    round: int
    marker: str
    acknowledged: int
    stored: int

    @property
    def lost(self) -> int:
        return max(0, self.acknowledged - self.stored)


@dataclass
class Results:
    date: str
    machine: dict[str, Any]
    config: dict[str, Any]
    seed: dict[str, Any] = field(default_factory=dict)
    runs: list[Measurement] = field(default_factory=list)
    create_checks: list[CreateCheck] = field(default_factory=list)
    payload_check: dict[str, Any] = field(default_factory=dict)
    growth: list[dict[str, Any]] = field(default_factory=list)
    rss: list[dict[str, Any]] = field(default_factory=list)
    explain: list[dict[str, Any]] = field(default_factory=list)
    explain_note: str = ""
    sqlite: dict[str, Any] = field(default_factory=dict)
    #: What a calendar costs, and costs others (`bench.calendar_load`).
    calendar: dict[str, Any] = field(default_factory=dict)
    #: What each layer of a list request costs in one process (`bench.layers`).
    layers: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["create_checks"] = [{**asdict(check), "lost": check.lost} for check in self.create_checks]
        data["summary"] = report.summarize(data["runs"])
        data["ratios"] = report.ratios(data["summary"])
        data["growth_ratios"] = report.growth_ratios(data["growth"])
        data["targets"] = report.targets(data)
        return data


# ----------------------------------------------------------------------------------------------
# Environment, tokens, servers


class Stack:
    """Secrets, tokens and environments shared by every server of one run."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.jwt_secret = secrets.token_urlsafe(48)
        self.cursor_secret = secrets.token_urlsafe(32)
        self.bin = Path(sys.executable).parent
        self.servers: list[Server] = []
        self._tokens: dict[str, str] = {}

    def token(self, user_id: str) -> str:
        """An HS256 token, as `todo token` mints them (`sub`, `iat`, `exp`), valid for 4 hours."""
        if user_id not in self._tokens:
            now = int(time.time())
            claims = {"sub": user_id, "iat": now, "exp": now + 4 * 3600}
            self._tokens[user_id] = jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        return self._tokens[user_id]

    def base_env(self) -> dict[str, str]:
        # Nothing from the caller's TODO_* settings leaks in; servers run in the scratch folder
        # so that no .env file is read either.
        return {key: value for key, value in os.environ.items() if not key.startswith(("TODO_", "BENCH_"))}

    def todo_env(self, database_url: str, port: int = 0, workers: int = 2) -> dict[str, str]:
        return {
            **self.base_env(),
            "TODO_DATABASE_URL": database_url,
            "TODO_HOST": "127.0.0.1",
            "TODO_PORT": str(port),
            "TODO_WORKERS": str(workers),
            "TODO_JWT_SECRET": self.jwt_secret,
            "TODO_CURSOR_SECRET": self.cursor_secret,
            "TODO_RATE_LIMITS": os.environ.get("BENCH_RATE_LIMITS", "none"),
            # Room above the 100,000-task user (at the default cap, its creates are all 409).
            "TODO_MAX_TASKS": "1000000",
        }

    def migrate(self, database_url: str) -> None:
        env = {**self.todo_env(database_url), "TODO_DEV_MODE": "1"}
        subprocess.run(
            [str(self.bin / "todo"), "migrate"], env=env, cwd=self.scratch, check=True, timeout=300, capture_output=True
        )

    def start_todo(self, name: str, database_url: str, workers: int = 2) -> Server:
        port = free_port()
        server = start_server(
            name,
            [str(self.bin / "todo"), "serve"],
            env=self.todo_env(database_url, port, workers),
            cwd=self.scratch,
            log_path=self.scratch / f"{name}.log",
            port=port,
        )
        self.servers.append(server)
        return server

    def start_uvicorn(self, name: str, app: str, env: dict[str, str]) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(REPO)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--no-proxy-headers"]
        server = start_server(
            name,
            argv,
            env={**self.base_env(), **env},
            cwd=self.scratch,
            log_path=self.scratch / f"{name}.log",
            port=port,
        )
        self.servers.append(server)
        return server


def _with_database(server_url: str, database: str) -> str:
    return urllib.parse.urlsplit(server_url)._replace(path="/" + database).geturl()


def _get_json(server: Server, path: str, token: str) -> Any:
    status, body = http_request(server.port, "GET", path, token=token)
    if status != 200:
        raise RuntimeError(f"{server.name}: GET {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def _get_page(server: Server, path: str, token: str) -> tuple[bytes, str]:
    """A list page's body, as sent, and its `Link` header ("" if none)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{server.name}: GET {path} answered {response.status}: {body[:300]!r}")
        return body, response.getheader("Link") or ""
    finally:
        connection.close()


def _follow(server: Server, first_path: str, token: str, pages: int) -> tuple[str, int]:
    """The path of the page `pages` pages after `first_path` (or of the last page, if fewer),
    reached by following each page's `Link: <…>; rel="next"` as a client does."""
    path, depth = first_path, 0
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        while depth < pages:
            try:
                connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = connection.getresponse()
                body = response.read()
            except OSError as error:
                if server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} has exited ({server.process.returncode})") from error
                raise
            if response.status != 200:
                raise RuntimeError(f"{server.name}: GET {path} answered {response.status}: {body[:300]!r}")
            following = _NEXT_LINK.search(response.getheader("Link") or "")
            if following is None:
                break
            url = urllib.parse.urlsplit(following[1])
            path, depth = f"{url.path}?{url.query}", depth + 1
    finally:
        connection.close()
    return path, depth


#: The next page's URL in a `Link` header (RFC 8288).
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def _url(server: Server, path: str = "/") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def _states_file(path: Path, states: list[tuple[str, bool]]) -> None:
    path.write_text("".join(f"{task_id} {int(completed)}\n" for task_id, completed in states))


# ----------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresBench:
    def __init__(self, config: Config, stack: Stack, results: Results) -> None:
        self.config = config
        self.stack = stack
        self.results = results
        self.database = f"todo_bench_{secrets.token_hex(4)}"
        self.database_url = _with_database(config.server_url, self.database)
        self.pg_pid: int | None = None
        self.deep_cursors: dict[tuple[str, str], str] = {}

    def run(self) -> None:
        with psycopg.connect(self.config.server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            version = admin.execute("SHOW server_version").fetchone()
            data_directory = admin.execute("SHOW data_directory").fetchone()
        self.results.machine["postgresql"] = version[0] if version else "?"
        log(f"database {self.database} created")
        try:
            self._run(data_directory[0] if data_directory else None)
        finally:
            with psycopg.connect(self.config.server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))
            log(f"database {self.database} dropped")

    def _run(self, data_directory: str | None) -> None:
        self.stack.migrate(self.database_url)
        config = self.config
        if config.wants(*SEEDED, "create"):
            log("migrated with `todo migrate`; seeding")
            plan = Plan(general_users=config.users)
            seeded = seed(self.database_url, plan)
            self.results.seed = {**asdict(seeded), "seconds": seeded.seconds, "plan": _plan_json(plan)}
            log(
                f"seeded {seeded.tasks} tasks, {seeded.task_tags} tags of {seeded.users} users "
                f"in {seeded.seconds:.1f} s"
            )
        try:
            self.pg_pid = postmaster_pid(data_directory)
        except RuntimeError as error:
            log(f"PostgreSQL CPU time will not be reported: {error}")

        with contextlib.ExitStack() as servers:
            todo = self.stack.start_todo("todo", self.database_url)
            servers.callback(todo.stop)
            running = {"todo": todo}
            if config.wants("list-50", "create"):
                naive_url = urllib.parse.urlsplit(self.database_url)._replace(scheme="postgresql+psycopg").geturl()
                naive = running["naive"] = self.stack.start_uvicorn(
                    "naive",
                    "bench.naive_app:app",
                    {"BENCH_NAIVE_DATABASE_URL": naive_url, "BENCH_JWT_SECRET": self.stack.jwt_secret},
                )
                servers.callback(naive.stop)
                ceiling = running["ceiling"] = self._start_ceiling(todo, naive)
                servers.callback(ceiling.stop)
            log("serving: " + ", ".join(f"{name} :{server.port}" for name, server in running.items()))

            if config.wants("list-50"):
                self._list_50(todo, ceiling, naive)
            if config.wants("list-tag-sort", "list-deep", "get"):
                self._reads(todo)
            if config.wants("growth"):
                self._growth(todo)
            self._writes(todo, running.get("naive"))
            self._memory(running)
        if config.wants("calendar"):
            self._calendar()
        if config.wants("explain"):
            self._explain()

    def _calendar(self) -> None:
        """A calendar's render, 304 and cached 200, and another user's list while calendars render,
        on a server of one worker (`bench.calendar_load`)."""
        server = self.stack.start_todo("todo-calendar", self.database_url, workers=1)
        try:
            self.results.calendar = calendar_load.run(
                server,
                self.stack,
                other_path=LIST_50.format(user=U50),
                other_token=self.stack.token(U50),
                seconds=self.config.seconds,
                warmup_seconds=self.config.warmup_seconds,
                pg_pid=self.pg_pid,
            )
        finally:
            server.stop()

    def _start_ceiling(self, todo: Server, naive: Server) -> Server:
        """The ceiling, serving the page todo serves. It must answer the same bytes and `Link`
        header, or the run stops here: a ceiling that sends less would flatter itself."""
        path, token = LIST_50.format(user=U50), self.stack.token(U50)
        body, link = _get_page(todo, path, token)
        page = json.loads(body)
        naive_page = _get_json(naive, path, token)
        page_file = self.stack.scratch / "ceiling-page.json"
        page_file.write_bytes(body)
        env = {"BENCH_CEILING_PAGE": str(page_file), "BENCH_CEILING_LINK": link}
        ceiling = self.stack.start_uvicorn("ceiling", "bench.ceiling_app:app", env)
        ceiling_body, ceiling_link = _get_page(ceiling, path, token)
        ids = [item["id"] for item in page]
        self.results.payload_check = {
            "path": path,
            "todo_items": len(ids),
            "todo_bytes": len(body),
            "naive_same_ids": [item["id"] for item in naive_page] == ids,
            "ceiling_same_bytes": ceiling_body == body,
            "ceiling_same_link": ceiling_link == link,
        }
        log(f"payload check: {self.results.payload_check}")
        if ceiling_body != body or ceiling_link != link:
            ceiling.stop()
            raise RuntimeError(
                f"the ceiling does not serve todo's page: {len(ceiling_body)} bytes against {len(body)}, "
                f"Link {ceiling_link!r} against {link!r}; first bytes {ceiling_body[:200]!r} / {body[:200]!r}"
            )
        if len(ids) != 50:
            log(f"warning: the list-50 page has {len(ids)} items, not 50")
        return ceiling

    def _measure(
        self,
        scenario: str,
        server_name: str,
        server: Server,
        round_number: int,
        path: str,
        script: str,
        *,
        args: Sequence[str] = (),
        token: str | None = None,
        connections: int | None = None,
        seconds: float | None = None,
        warmup: float | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> tuple[Measurement, WrkResult | None]:
        measurement, warm = _measure_logged(
            scenario,
            server_name,
            server,
            round_number,
            path,
            script,
            config=self.config,
            pg_pid=self.pg_pid,
            args=args,
            token=token,
            connections=connections,
            seconds=seconds,
            warmup=warmup,
            prepare=prepare,
        )
        self.results.runs.append(measurement)
        return measurement, warm

    def _list_50(self, todo: Server, ceiling: Server, naive: Server) -> None:
        path, token = LIST_50.format(user=U50), self.stack.token(U50)
        for round_number in range(1, self.config.rounds + 1):
            for name, server in (("todo", todo), ("ceiling", ceiling), ("naive", naive)):
                self._measure("list-50", name, server, round_number, path, "get.lua", token=token)

    def _reads(self, todo: Server) -> None:
        tag_path = f"/api/{U10K}/tasks?tag={TAG}&sort=-due_at"
        deep_path, depth = _follow(
            todo, f"/api/{U100K}/tasks?limit=50", self.stack.token(U100K), self.config.deep_pages
        )
        log(f"deep page: {depth} pages into {U100K}'s tasks")
        ids_file = self.stack.scratch / "u10k-ids.txt"
        _states_file(ids_file, task_states(self.database_url, U10K))
        for round_number in range(1, self.config.rounds + 1):
            self._measure(
                "list-tag-sort", "todo", todo, round_number, tag_path, "get.lua", token=self.stack.token(U10K)
            )
            measurement, _ = self._measure(
                "list-deep", "todo", todo, round_number, deep_path, "get.lua", token=self.stack.token(U100K)
            )
            measurement.notes["pages_deep"] = depth
            self._measure(
                "get",
                "todo",
                todo,
                round_number,
                "/",
                "task_get.lua",
                args=[str(ids_file), f"/api/{U10K}/tasks/"],
                token=self.stack.token(U10K),
            )

    def _growth(self, todo: Server) -> None:
        depths = {U50: self.config.deep_pages_10k, U10K: self.config.deep_pages_10k, U100K: self.config.deep_pages}
        tasks = self.results.seed["plan"]["measured"]
        for sort in SORTS:
            for user in (U50, U10K, U100K):
                token = self.stack.token(user)
                first = f"/api/{user}/tasks?sort={sort}&limit=50"
                deep, depth = _follow(todo, first, token, depths[user])
                pages = [("first", first, 0)] + ([("deep", deep, depth)] if depth else [])
                if depth:
                    self.deep_cursors[(user, sort)] = deep
                for page, path, pages_deep in pages:
                    measurement, _ = _measure_logged(
                        "growth",
                        "todo",
                        todo,
                        1,
                        path,
                        "get.lua",
                        config=self.config,
                        pg_pid=self.pg_pid,
                        token=token,
                        connections=4,
                        seconds=self.config.growth_seconds,
                        warmup=0,
                    )
                    self.results.growth.append(
                        {
                            "user": user,
                            "tasks": tasks[user],
                            "sort": sort,
                            "page": page,
                            "pages_deep": pages_deep,
                            "rps": measurement.rps,
                            "p50_us": measurement.p50_us,
                            "mean_us": measurement.mean_us,
                            "p99_us": measurement.p99_us,
                            "errors": measurement.error_count,
                            "server_us_per_request": measurement.server_us_per_request,
                            "pg_us_per_request": measurement.pg_us_per_request,
                        }
                    )

    def _writes(self, todo: Server, naive: Server | None) -> None:
        if self.config.wants("create-spread"):
            self._create_spread(todo)
        if naive is not None and self.config.wants("create"):
            self._create(todo, naive)
        if self.config.wants("create-100k"):
            self._create_100k(todo)
        if self.config.wants("complete"):
            self._complete(todo)
        if self.config.wants("mixed"):
            self._mixed(todo)

    def _create_spread(self, todo: Server) -> None:
        """Creates of 100 users at once: what the commits of many users cost together (a
        commit that waited for another's, as with NOTIFY inside the transaction, shows here)."""
        users = [f"bench-spread-{number:03d}" for number in range(1, SPREAD_USERS + 1)]
        users_file = self.stack.scratch / "spread-users.txt"
        users_file.write_text("".join(f"{user} {self.stack.token(user)}\n" for user in users))
        for round_number in range(1, self.config.rounds + 1):
            marker = f"bm{secrets.token_hex(4)}"
            measurement, warm = self._measure(
                "create-spread", "todo", todo, round_number, "/", "create_spread.lua", args=[str(users_file), marker]
            )
            self._check_creates("create-spread", "todo", round_number, marker, users, measurement, warm)

    def _create(self, todo: Server, naive: Server) -> None:
        writers = {"todo": (todo, TODO_WRITER), "naive": (naive, NAIVE_WRITER)}
        for round_number in range(1, self.config.rounds + 1):
            for name, (server, user) in writers.items():
                marker = f"bm{secrets.token_hex(4)}"
                path = f"/api/{user}/tasks"
                measurement, warm = self._measure(
                    "create",
                    name,
                    server,
                    round_number,
                    path,
                    "create.lua",
                    args=[path, marker],
                    token=self.stack.token(user),
                )
                self._check_creates("create", name, round_number, marker, [user], measurement, warm)

    def _create_100k(self, todo: Server) -> None:
        """Creates of the 100,000-task user: a create costs what it costs a user of a few
        (`create`), whatever the user has (the cap on tasks is not a count of them)."""
        path = f"/api/{U100K}/tasks"
        for round_number in range(1, self.config.rounds + 1):
            marker = f"bm{secrets.token_hex(4)}"
            measurement, warm = self._measure(
                "create-100k",
                "todo",
                todo,
                round_number,
                path,
                "create.lua",
                args=[path, marker],
                token=self.stack.token(U100K),
            )
            self._check_creates("create-100k", "todo", round_number, marker, [U100K], measurement, warm)

    def _complete(self, todo: Server) -> None:
        ids_file = self.stack.scratch / "complete-ids.txt"
        for round_number in range(1, self.config.rounds + 1):
            self._measure(
                "complete",
                "todo",
                todo,
                round_number,
                "/",
                "complete.lua",
                args=[str(ids_file), f"/api/{U10K}/tasks/", str(self.config.threads)],
                token=self.stack.token(U10K),
                prepare=lambda: _states_file(ids_file, task_states(self.database_url, U10K)),
            )

    def _mixed(self, todo: Server) -> None:
        users = [Plan().general_user(number) for number in range(1, min(MIXED_USERS, self.config.users) + 1)]
        users_file = self.stack.scratch / "mixed-users.txt"

        def write_users() -> None:
            states = task_states_of(self.database_url, users)
            users_file.write_text(
                "".join(
                    f"{user} {self.stack.token(user)} "
                    + " ".join(f"{task_id}:{int(completed)}" for task_id, completed in states[user])
                    + "\n"
                    for user in users
                )
            )

        for round_number in range(1, self.config.rounds + 1):
            marker = f"bm{secrets.token_hex(4)}"
            measurement, warm = self._measure(
                "mixed",
                "todo",
                todo,
                round_number,
                "/",
                "mixed.lua",
                args=[str(users_file), marker, str(self.config.threads)],
                prepare=write_users,
            )
            self._check_creates("mixed", "todo", round_number, marker, users, measurement, warm)

    def _check_creates(
        self,
        scenario: str,
        server: str,
        round_number: int,
        marker: str,
        users: list[str],
        measurement: Measurement,
        warm: WrkResult | None,
    ) -> None:
        acknowledged = measurement.statuses.get("201", 0) + (warm.statuses.get("201", 0) if warm else 0)
        stored = count_marked(self.database_url, users, marker)
        check = CreateCheck(scenario, server, round_number, marker, acknowledged, stored)
        self.results.create_checks.append(check)
        measurement.notes["created_acknowledged"] = acknowledged
        measurement.notes["created_stored"] = stored
        log(f"  {scenario} {server}: {acknowledged} creates acknowledged, {stored} stored, {check.lost} lost")

    def _memory(self, servers: dict[str, Server]) -> None:
        for name, server in servers.items():
            for pid in descendants(server.pid):
                kib = rss_kib(pid)
                if kib is None:
                    continue
                role = "master" if pid == server.pid else "worker"
                cmd = command_line(pid)
                if "resource_tracker" in cmd:
                    role = "helper"
                self.results.rss.append({"server": name, "pid": pid, "role": role, "rss_mb": kib * 1024 / 1e6})
        workers = [
            entry["rss_mb"] for entry in self.results.rss if entry["server"] == "todo" and entry["role"] == "worker"
        ]
        log(f"todo worker RSS: {', '.join(f'{mb:.0f} MB' for mb in workers)}")

    def _explain(self) -> None:
        """The plans PostgreSQL runs for the todo server's list queries, from auto_explain.

        auto_explain is preloaded for new sessions of the bench database only (we are its
        superuser), a one-worker todo server opens them, and each query's plan with ANALYZE and
        BUFFERS is read from the server log; the settings are reset afterwards."""
        log_file = self._log_file()
        if log_file is None:
            self.results.explain_note = "the PostgreSQL log file was not found: no plans captured"
            log(self.results.explain_note)
            return
        settings = {
            "session_preload_libraries": "auto_explain",
            "auto_explain.log_min_duration": "0",
            "auto_explain.log_analyze": "on",
            "auto_explain.log_buffers": "on",
            "auto_explain.log_timing": "on",
            "auto_explain.log_format": "text",
            "auto_explain.log_level": "log",
        }
        with psycopg.connect(self.config.server_url, autocommit=True) as admin:
            for name, value in settings.items():
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(self.database), sql.SQL(name), sql.Literal(value)
                    )
                )
        try:
            server = self.stack.start_todo("todo-explain", self.database_url, workers=1)
            try:
                targets = [(f"list-50 ({U50})", LIST_50.format(user=U50), U50)]
                targets.append((f"tag+sort ({U10K})", f"/api/{U10K}/tasks?tag={TAG}&sort=-due_at", U10K))
                for sort in SORTS:
                    targets.append((f"{sort}, first page ({U100K})", f"/api/{U100K}/tasks?sort={sort}&limit=50", U100K))
                    if (U100K, sort) in self.deep_cursors:
                        targets.append((f"{sort}, deep page ({U100K})", self.deep_cursors[(U100K, sort)], U100K))
                for label, path, user in targets:
                    plans = self._plans_of(server, log_file, path, self.stack.token(user))
                    self.results.explain.append({"query": label, "path": path, "plans": plans})
                captured = sum(1 for entry in self.results.explain if entry["plans"])
                log(f"captured plans for {captured} of {len(targets)} list queries from {log_file}")
            finally:
                server.stop()
        except (RuntimeError, OSError) as error:
            self.results.explain_note = f"plans not captured: {error}"
            log(self.results.explain_note)
        finally:
            with psycopg.connect(self.config.server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(sql.Identifier(self.database)))

    def _log_file(self) -> Path | None:
        override = os.environ.get("BENCH_PG_LOG")
        if override:
            return Path(override)
        with psycopg.connect(self.config.server_url, autocommit=True) as admin:
            current = admin.execute("SELECT pg_current_logfile()").fetchone()
            directory = admin.execute("SHOW data_directory").fetchone()
            number = admin.execute("SHOW server_version_num").fetchone()
        if current and current[0]:
            path = Path(current[0])
            return path if path.is_absolute() else Path(directory[0] if directory else "/") / path
        major = int(number[0]) // 10000 if number else 15
        default = Path(f"/var/log/postgresql/postgresql-{major}-main.log")
        return default if default.exists() else None

    def _plans_of(self, server: Server, log_file: Path, path: str, token: str) -> list[str]:
        """The plans logged for the second of two identical requests (the first warms up)."""
        http_request(server.port, "GET", path, token=token)
        time.sleep(0.3)
        offset = log_file.stat().st_size
        status, _ = http_request(server.port, "GET", path, token=token)
        if status != 200:
            return [f"(the request answered {status})"]
        deadline = time.monotonic() + 3
        plans: list[str] = []
        while time.monotonic() < deadline:
            time.sleep(0.3)
            plans = _auto_explain_entries(log_file, offset, self.database)
            if plans:
                time.sleep(0.2)
                return _auto_explain_entries(log_file, offset, self.database)
        return plans


def _auto_explain_entries(log_file: Path, offset: int, database: str) -> list[str]:
    with log_file.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("\t") and entries:
            entries[-1].append(line[1:])
        else:
            entries.append([line])
    plans = []
    for head, *body in entries:
        # auto_explain is on for this database only; the prefix names it when it has %d.
        if "duration:" in head and "plan:" in head and body and (database in head or "@" not in head):
            plans.append("\n".join([head[head.index("duration:") :], *body]))
    return plans


def _plan_json(plan: Plan) -> dict[str, Any]:
    data = asdict(plan)
    data["open_users"] = sorted(plan.open_users)
    return data


def _measure_logged(
    scenario: str,
    server_name: str,
    server: Server,
    round_number: int,
    path: str,
    script: str,
    *,
    config: Config,
    pg_pid: int | None,
    args: Sequence[str] = (),
    token: str | None = None,
    connections: int | None = None,
    seconds: float | None = None,
    warmup: float | None = None,
    prepare: Callable[[], None] | None = None,
) -> tuple[Measurement, WrkResult | None]:
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.name} has exited ({server.process.returncode}):\n{server.log_tail()}")
    measurement, warm = measure(
        scenario,
        server_name,
        round_number,
        _url(server, path),
        script,
        server_pid=server.pid,
        pg_pid=pg_pid,
        args=args,
        threads=config.threads,
        connections=connections or config.connections,
        seconds=seconds or config.seconds,
        warmup_seconds=config.warmup_seconds if warmup is None else warmup,
        env={"BENCH_TOKEN": token or ""},
        prepare=prepare,
    )
    cpu = f"{measurement.server_us_per_request:,.0f}" if measurement.server_us_per_request else "-"
    pg = f"{measurement.pg_us_per_request:,.0f}" if measurement.pg_us_per_request else "-"
    log(
        f"{scenario:<14} {server_name:<8} r{round_number} {measurement.rps:8,.0f} req/s  "
        f"p50 {measurement.p50_us / 1000:7.1f} ms  p99 {measurement.p99_us / 1000:7.1f} ms  "
        f"errors {measurement.error_count:<5} server {cpu} µs/req  pg {pg} µs/req"
    )
    return measurement, warm


# ----------------------------------------------------------------------------------------------
# SQLite


class SqliteBench:
    """The embedded default: a SQLite file served by `todo serve` with 2 workers."""

    def __init__(self, config: Config, stack: Stack, results: Results) -> None:
        self.config = config
        self.stack = stack
        self.results = results
        self.folder = stack.scratch / "sqlite"
        self.folder.mkdir()
        self.path = self.folder / "bench.db"
        self.database_url = f"sqlite+aiosqlite:///{self.path}"

    def run(self) -> None:
        self.stack.migrate(self.database_url)
        server = self.stack.start_todo("todo-sqlite", self.database_url)
        try:
            self._seed(server)
            self._run(server)
        finally:
            server.stop()

    def _seed(self, server: Server) -> None:
        """Through the API itself: 200 tasks, 30 % of them then completed."""
        started = time.perf_counter()
        rng = random.Random(20261127)
        token = self.stack.token(SQLITE_USER)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for user in (SQLITE_USER, SQLITE_WRITER):
                for body in sample_tasks(rng, SQLITE_TASKS if user == SQLITE_USER else 30):
                    status, answer = http_request(
                        server.port,
                        "POST",
                        f"/api/{user}/tasks",
                        token=self.stack.token(user),
                        body=json.dumps(body).encode(),
                        connection=connection,
                    )
                    if status != 201:
                        raise RuntimeError(f"SQLite seed: create answered {status}: {answer[:300]!r}")
                    if user == SQLITE_USER and rng.random() < 0.3:
                        task_id = json.loads(answer)["id"]
                        status, answer = http_request(
                            server.port,
                            "PATCH",
                            f"/api/{user}/tasks/{task_id}/complete",
                            token=token,
                            body=b'{"completed": true}',
                            connection=connection,
                        )
                        if status != 200:
                            raise RuntimeError(f"SQLite seed: complete answered {status}: {answer[:300]!r}")
        finally:
            connection.close()
        self.results.sqlite["seed_seconds"] = time.perf_counter() - started
        self.results.sqlite["tasks"] = SQLITE_TASKS
        log(f"SQLite: seeded {SQLITE_TASKS} tasks through the API in {self.results.sqlite['seed_seconds']:.1f} s")

    def _run(self, server: Server) -> None:
        list_path = LIST_50.format(user=SQLITE_USER)
        create_path = f"/api/{SQLITE_WRITER}/tasks"
        list_token, create_token = self.stack.token(SQLITE_USER), self.stack.token(SQLITE_WRITER)
        checks = []
        for round_number in range(1, self.config.rounds + 1):
            measurement, _ = _measure_logged(
                "sqlite-list",
                "todo",
                server,
                round_number,
                list_path,
                "get.lua",
                config=self.config,
                pg_pid=None,
                token=list_token,
            )
            self.results.runs.append(measurement)
            marker = f"bm{secrets.token_hex(4)}"
            measurement, warm = _measure_logged(
                "sqlite-create",
                "todo",
                server,
                round_number,
                create_path,
                "create.lua",
                config=self.config,
                pg_pid=None,
                args=[create_path, marker],
                token=create_token,
            )
            self.results.runs.append(measurement)
            acknowledged = measurement.statuses.get("201", 0) + (warm.statuses.get("201", 0) if warm else 0)
            checks.append(
                CreateCheck("sqlite-create", "todo", round_number, marker, acknowledged, self._stored(marker))
            )
            checks.extend(self._combined(server, round_number, list_path, list_token, create_path, create_token))
        self.results.create_checks.extend(checks)

    def _combined(
        self, server: Server, round_number: int, list_path: str, list_token: str, create_path: str, create_token: str
    ) -> list[CreateCheck]:
        """16 connections list while 4 create, at the same time (two wrk processes)."""
        marker = f"bm{secrets.token_hex(4)}"

        def both(seconds: float) -> tuple[WrkResult, WrkResult]:
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                lists = pool.submit(
                    run_wrk,
                    _url(server, list_path),
                    "get.lua",
                    threads=2,
                    connections=16,
                    seconds=seconds,
                    env={"BENCH_TOKEN": list_token},
                )
                creates = pool.submit(
                    run_wrk,
                    _url(server, create_path),
                    "create.lua",
                    args=[create_path, marker],
                    threads=1,
                    connections=4,
                    seconds=seconds,
                    env={"BENCH_TOKEN": create_token},
                )
                return lists.result(), creates.result()

        _, warm_creates = both(self.config.warmup_seconds)
        machine_before, wrk_before = machine_busy_seconds(), children_cpu_seconds()
        before = tree_cpu_seconds(server.pid)
        lists, creates = both(self.config.seconds)
        cpu = tree_cpu_seconds(server.pid) - before
        other = other_share(
            machine_busy_seconds() - machine_before, cpu + children_cpu_seconds() - wrk_before, lists.duration_s
        )
        total = lists.requests + creates.requests
        for scenario, result, connections in (
            ("sqlite-mixed-list", lists, 16),
            ("sqlite-mixed-create", creates, 4),
        ):
            measurement = Measurement.of(
                result,
                # Both sides share one server: its CPU time over all requests of both.
                server_cpu=cpu,
                pg_cpu=None,
                requests_for_cpu=total,
                scenario=scenario,
                server="todo",
                round=round_number,
                url=_url(server, list_path if scenario.endswith("list") else create_path),
                threads=2 if scenario.endswith("list") else 1,
                connections=connections,
                seconds=self.config.seconds,
                other_cpu_share=other,
                notes={"concurrent_with": "sqlite-mixed-create" if scenario.endswith("list") else "sqlite-mixed-list"},
            )
            self.results.runs.append(measurement)
            log(
                f"{scenario:<20} r{round_number} {measurement.rps:8,.0f} req/s  "
                f"p99 {measurement.p99_us / 1000:7.1f} ms  "
                f"errors {measurement.error_count} (timeouts {measurement.timeouts})"
            )
        # The warm-up's creates carry the same marker: count its 201s too.
        acknowledged = creates.statuses.get("201", 0) + warm_creates.statuses.get("201", 0)
        return [CreateCheck("sqlite-mixed", "todo", round_number, marker, acknowledged, self._stored(marker))]

    def _stored(self, marker: str) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)) as connection:
            row = connection.execute(
                "SELECT count(*) FROM tasks WHERE user_id = ? AND substr(title, 1, ?) = ?",
                (SQLITE_WRITER, len(marker) + 1, marker + " "),
            ).fetchone()
        return int(row[0])


# ----------------------------------------------------------------------------------------------
# Machine, outputs, main


def machine_facts() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        memory = f"{kib / 2**20:.1f} GiB"
    busy_before = machine_busy_seconds()
    time.sleep(1)
    busy_share = (machine_busy_seconds() - busy_before) / (os.cpu_count() or 1)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = " ".join(((wrk.stdout or wrk.stderr).split() or ["?"])[:2])
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True, check=False
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "busy_before_start": busy_share,
        "git_commit": commit.stdout.strip(),
        "git_dirty": bool(dirty.stdout.strip()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _layers(config: Config, scratch: Path) -> dict[str, Any]:
    """`python -m bench.layers` for this checkout, in a process of its own (its metrics must be
    in multiprocess mode from the start, as in a server's worker)."""
    output = scratch / "layers.json"
    argv = [sys.executable, "-m", "bench.layers", "--rounds", str(max(config.rounds, 3)), "--json", str(output)]
    log("layers: the list-50 request through ever more of the pipeline, in one process")
    subprocess.run([*argv, "--server-url", config.server_url], cwd=REPO, check=True, timeout=900)
    found: dict[str, Any] = json.loads(output.read_text())
    return found


def _json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return sorted(value) if isinstance(value, frozenset) else value


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    config = Config.parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    results = Results(
        date=datetime.now(UTC).date().isoformat(),
        machine=machine_facts(),
        config={key: _json_value(value) for key, value in asdict(config).items()},
    )
    results.config["server_url"] = urllib.parse.urlsplit(config.server_url)._replace(netloc="…").geturl()
    if results.machine["busy_before_start"] > 0.05:
        log(f"warning: the machine is already {results.machine['busy_before_start']:.0%} busy: expect noisy numbers")
    log(
        f"{config.seconds:.0f} s per run after {config.warmup_seconds:.0f} s of warm-up, {config.rounds} round(s), "
        f"growth runs of {config.growth_seconds:.0f} s; wrk -t{config.threads} -c{config.connections}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="todo-bench-"))
    stack = Stack(scratch)
    # Only abuse scenarios chosen: they write their own results (bench/abuse.py), nothing else runs.
    abuse_only = bool(config.only) and config.only <= {abuse.ALL, *abuse.SCENARIOS}
    try:
        if not abuse_only:
            if config.wants("layers"):
                results.layers = _layers(config, scratch)
            PostgresBench(config, stack, results).run()
            if not config.skip_sqlite and config.wants("sqlite-list", "sqlite-create", "sqlite-mixed"):
                SqliteBench(config, stack, results).run()
        if config.wants(abuse.ALL, *abuse.SCENARIOS):
            abuse.run(
                stack,
                server_url=config.server_url,
                results_dir=config.results_dir,
                only=config.only,
                skip_sqlite=config.skip_sqlite,
            )
    except BaseException:
        for server in stack.servers:
            server.stop()
            log(f"the end of {server.name}'s log:\n{server.log_tail(15)}")
        log(f"failed: the servers' logs are kept in {scratch}")
        raise
    for server in stack.servers:
        server.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    if abuse_only:
        return 0
    results.duration_seconds = time.monotonic() - STARTED
    data = results.as_json()
    outputs = report.write(data, config.results_dir)
    print(report.console(data))
    log("wrote " + ", ".join(str(path) for path in outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
