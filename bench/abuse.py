"""Abuse (issue 19): can one client, slow or greedy or careless, take the service from the others?
Part of `make bench`; alone with `make bench-abuse` (`python -m bench.abuse`, ~8 minutes), or
some of them with `BENCH_ONLY=abuse-greedy,abuse-import` (`abuse` selects all six).

Each scenario starts a fresh `todo serve` (2 workers) on PostgreSQL (a database of its own,
dropped after) and then on the embedded SQLite default, and:
1. a probe user (50 open tasks) lists 50 and creates one, in turns, 10 requests a second,
   first alone for BENCH_ABUSE_BASELINE_SECONDS (5): what this machine gives now;
2. the abuser runs for about BENCH_ABUSE_SECONDS (15) while the probe goes on, and the server's
   gauges (pool connections in use and waited for, event streams, worker memory) are sampled;
3. the report: the probe's p50/p99/max and failures, the abuser's own outcome, the 5xx and
   tracebacks in the server's log, and PASS/FAIL against issue 19's targets.

| scenario | the abuser | TODO_RATE_LIMITS |
|---|---|---|
| abuse-calendar | 8 pollers of one feed (2,000 tasks) flat out, If-None-Match; the owner edits every 5 s | none |
| abuse-export | 8 users × 3 exports at once, each read at 8 KB/s (150 tasks, ~175 KiB each) | none |
| abuse-import | one import of 20,000 tasks (~10 MB) | none |
| abuse-greedy | 8 connections posting 100-create batches for one user, ignoring Retry-After | the default |
| abuse-greedy-creates | the same, one create per request | the default |
| abuse-streams | one user opening 40 event streams, retrying 10 a second, writing 5 tasks a second | none |

Rate limits are off where they would hide the guard being measured (a poller refused 429 costs
nothing, and the stream cap must answer, not the limiter); the greedy user is the limiter's case.

Results: bench/results/<date>-abuse/abuse.json and abuse.md (BENCH_RESULTS_DIR for elsewhere).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import secrets
import shlex
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from bench import calendar_load
from bench.abuse_report import markdown
from bench.abusers import EventStreams, WatchedStream, slow_download
from bench.loadgen import run_wrk
from bench.probe import Gauges, Probe
from bench.procs import Server, free_port, machine_busy_seconds, start_server

if TYPE_CHECKING:
    from bench.run import Stack

SCENARIOS = ("abuse-calendar", "abuse-export", "abuse-import", "abuse-greedy", "abuse-greedy-creates", "abuse-streams")
#: Selects every abuse scenario in BENCH_ONLY.
ALL = "abuse"
#: The issue's bound on another user's latency while someone abuses the server.
OTHERS_P99_MS = 100.0
#: The issue's bound on how long another user's write may wait for an import on SQLite.
IMPORT_WAIT_MS = 1000.0
WORKERS = 2
PROBE_TASKS = 50
BATCH = 100


def log(message: str) -> None:
    print(f"[abuse] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    passed: bool


@dataclass
class Record:
    """One scenario on one database: what the probe saw alone and under abuse, what the abuser
    got, what the server logged, and the verdicts."""

    scenario: str
    database: str
    rate_limits: str
    baseline: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    abuser: dict[str, Any] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    server_log: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)


class Context:
    """What a scenario works with: one running server, tokens, the probe and the window."""

    def __init__(self, stack: Stack, server: Server, record: Record, seconds: float) -> None:
        self.stack = stack
        self.server = server
        self.record = record
        self.seconds = seconds
        self.run_id = secrets.token_hex(3)
        self.probe_user = f"probe-{record.scenario}-{self.run_id}"
        self.probe = Probe(server, self.probe_user, stack.token(self.probe_user))

    def user(self, role: str) -> str:
        return f"{role}-{self.run_id}"

    def token(self, user: str) -> str:
        return self.stack.token(user)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def create_tasks(self, user: str, bodies: list[dict[str, Any]]) -> None:
        """Through `POST /batch`, 100 at a time."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        headers = {"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"}
        try:
            for first in range(0, len(bodies), BATCH):
                operations = [{"op": "create", "body": body} for body in bodies[first : first + BATCH]]
                connection.request("POST", f"/api/{user}/batch", json.dumps({"operations": operations}), headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"seeding {user}: /batch answered {response.status}: {answer[:300]!r}")
        finally:
            connection.close()

    @contextlib.contextmanager
    def abused(self) -> Iterator[None]:
        """The window of abuse: the probe runs and the gauges are sampled while the block does."""
        busy_before, started = machine_busy_seconds(), time.monotonic()
        with Gauges(self.server) as gauges:
            self.probe.start()
            try:
                yield
            finally:
                self.record.probe = self.probe.stop()
        elapsed = time.monotonic() - started
        self.record.gauges = gauges.highest
        self.record.machine["window_seconds"] = elapsed
        self.record.machine["busy_share"] = (machine_busy_seconds() - busy_before) / (elapsed * (os.cpu_count() or 1))

    def probe_checks(self, *, p99_ms: float = OTHERS_P99_MS) -> list[Check]:
        probe = self.record.probe
        failures = ", ".join(f"{key}: {n}" for key, n in probe["failures"].items())
        return [
            Check(
                "another user's requests never fail",
                f"{probe['errors']} of {probe['requests']} failed" + (f" ({failures})" if failures else ""),
                probe["errors"] == 0 and probe["requests"] > 0,
            ),
            Check(
                f"another user's p99 ≤ {p99_ms:.0f} ms",
                f"p99 {probe['p99_ms']:.0f} ms (max {probe['max_ms']:.0f} ms)",
                probe["p99_ms"] <= p99_ms,
            ),
        ]


# ----------------------------------------------------------------------------------------------
# The scenarios: each seeds what it needs, abuses within `ctx.abused()`, returns its checks.


#: How often the calendar's owner changes a task: each change makes the pollers' next GET a 200
#: (one render per worker), the polls between are 304s.
OWNER_CHANGE_SECONDS = 5.0


def calendar_pollers(ctx: Context) -> list[Check]:
    owner = ctx.user("calendar-owner")
    ids = calendar_load.seed(ctx.server, ctx.stack, owner, calendar_load.CALENDAR_TASKS)
    status, body = _send(ctx, owner, "POST", f"/api/{owner}/calendar-feeds", {})
    if status != 201:
        raise RuntimeError(f"calendar feed: {status} {body[:300]!r}")
    feed_path = urllib.parse.urlsplit(json.loads(body)["url"]).path
    changes, stop = [0], threading.Event()

    def change_now_and_then() -> None:
        while not stop.wait(OWNER_CHANGE_SECONDS):
            _send(ctx, owner, "PATCH", f"/api/{owner}/tasks/{ids[changes[0] % len(ids)]}", {"title": "changed"})
            changes[0] += 1

    changer = threading.Thread(target=change_now_and_then, daemon=True)
    with ctx.abused():
        changer.start()
        try:
            polls = run_wrk(ctx.url(feed_path), "poll.lua", threads=2, connections=8, seconds=ctx.seconds)
        finally:
            stop.set()
            changer.join(timeout=30)
    ctx.record.abuser = {
        "what": f"8 pollers (wrk -t2 -c8) of one feed of {len(ids):,} tasks, If-None-Match, flat out",
        "owner_changes": changes[0],
        **_wrk_figures(polls),
    }
    return ctx.probe_checks()


EXPORTERS, EXPORTS_PER_USER, EXPORT_TASKS, EXPORT_READ_BYTES_PER_SECOND = 8, 3, 150, 8 * 1024


def slow_exports(ctx: Context) -> list[Check]:
    users = [ctx.user(f"exporter{n}") for n in range(EXPORTERS)]
    for user in users:
        ctx.create_tasks(user, [{"title": f"Task {n}", "description": "A note. " * 100} for n in range(EXPORT_TASKS)])
    deadline_seconds = max(3 * ctx.seconds, 60.0)
    with ctx.abused(), concurrent.futures.ThreadPoolExecutor(max_workers=EXPORTERS * EXPORTS_PER_USER) as pool:
        deadline = time.monotonic() + deadline_seconds
        futures = [
            pool.submit(
                slow_download,
                ctx.server.port,
                f"/api/{user}/export",
                ctx.token(user),
                bytes_per_second=EXPORT_READ_BYTES_PER_SECOND,
                deadline=deadline,
            )
            for user in users
            for _ in range(EXPORTS_PER_USER)
        ]
        downloads = [future.result() for future in futures]
    accepted = [download for download in downloads if download.status == 200]
    refused = [download for download in downloads if download.status != 200]
    complete = [download for download in accepted if download.complete]
    refusals = _tally(f"{d.status} {d.problem}".strip() for d in refused)
    ctx.record.abuser = {
        "what": (
            f"{EXPORTERS} users × {EXPORTS_PER_USER} exports at once ({EXPORT_TASKS} tasks each), "
            f"read at {EXPORT_READ_BYTES_PER_SECOND // 1024} KB/s, cut by us after {deadline_seconds:.0f} s"
        ),
        "accepted": len(accepted),
        "refused": refusals,
        "complete": len(complete),
        "document_bytes": max((d.length or 0 for d in accepted), default=0),
        "slowest_seconds": max((d.seconds for d in accepted), default=0.0),
        "downloads": [download.as_json() for download in downloads],
    }
    waiting = ctx.record.gauges.get("pool_waiting")
    return [
        *ctx.probe_checks(),
        Check(
            "no request waits for a pool connection (gauge, sampled)",
            "not reported (SQLite)" if ctx.record.database == "sqlite" else f"at most {waiting or 0:.0f} waiting",
            not waiting,
        ),
        Check(
            "a slow but steady reader gets the whole document",
            f"{len(complete)} of {len(accepted)} accepted exports complete",
            bool(accepted) and len(complete) == len(accepted),
        ),
        Check(
            "a user's extra exports answer 429 with Retry-After",
            ", ".join(f"{key}: {n}" for key, n in refusals.items()) or "none refused",
            bool(refused) and all(d.status == 429 and d.retry_after for d in refused),
        ),
    ]


IMPORT_TOP_LEVEL = 10_000


def import_document(top_level: int = IMPORT_TOP_LEVEL) -> dict[str, Any]:
    """`top_level` tasks with an 800-character description and a step each (the shape of the
    2026-12-07 large-import measurement: 20,000 tasks, ~10 MB)."""
    tasks: list[dict[str, Any]] = []
    for n in range(top_level):
        parent = str(uuid.UUID(int=n + 1))
        tasks.append({"id": parent, "title": f"Task {n:05}", "tags": [f"tag-{n % 7}"], "description": "A note. " * 100})
        tasks.append({"id": str(uuid.UUID(int=1_000_000 + n)), "title": f"Step {n:05}", "parent_id": parent})
    return {"format": "todo-export", "version": 1, "tasks": tasks}


def large_import(ctx: Context) -> list[Check]:
    importer = ctx.user("importer")
    document = json.dumps(import_document()).encode()
    with ctx.abused():
        time.sleep(1.0)
        connection = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=300)
        started = time.monotonic()
        try:
            headers = {"Authorization": f"Bearer {ctx.token(importer)}", "Content-Type": "application/json"}
            connection.request("POST", f"/api/{importer}/import", document, headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as error:
            status, answer = 0, type(error).__name__.encode()
        finally:
            connection.close()
        took = time.monotonic() - started
        time.sleep(1.0)
    imported = json.loads(answer).get("tasks") if status == 201 else None
    ctx.record.abuser = {
        "what": f"one import of {2 * IMPORT_TOP_LEVEL:,} tasks ({len(document) / 1e6:.1f} MB)",
        "status": status,
        "seconds": took,
        "bytes": len(document),
        "tasks_imported": imported,
        "answer": "" if status == 201 else answer[:300].decode(errors="replace"),
    }
    creates = ctx.record.probe["create"]
    return [
        *ctx.probe_checks(),
        Check(
            f"another user's writes wait ≤ {IMPORT_WAIT_MS / 1000:.0f} s for the import",
            f"creates max {creates['max_ms']:,.0f} ms (p99 {creates['p99_ms']:,.0f} ms)",
            creates["max_ms"] <= IMPORT_WAIT_MS and creates["errors"] == 0,
        ),
        Check("the import succeeds", f"{status}, {imported} tasks in {took:.1f} s", status == 201),
    ]


def greedy_batches(ctx: Context) -> list[Check]:
    return _greedy(ctx, operations=BATCH)


def greedy_creates(ctx: Context) -> list[Check]:
    return _greedy(ctx, operations=0)


def _greedy(ctx: Context, *, operations: int) -> list[Check]:
    """One user on 8 connections, never waiting: batches of `operations` creates, or (0) one
    create per request."""
    greedy = ctx.user("greedy")
    path = f"/api/{greedy}/batch" if operations else f"/api/{greedy}/tasks"
    with ctx.abused():
        result = run_wrk(
            ctx.url(path),
            "greedy.lua",
            args=[path, f"g{secrets.token_hex(4)}", str(operations)],
            threads=2,
            connections=8,
            seconds=ctx.seconds,
            env={"BENCH_TOKEN": ctx.token(greedy)},
        )
    statuses = result.statuses
    refused = statuses.get("429", 0)
    server_errors = {key: n for key, n in statuses.items() if key[:1] == "5"}
    headers = _headers(ctx, greedy, f"/api/{greedy}/tasks?limit=1")
    answered = {key: n for key, n in statuses.items() if key[:1].isdigit() and ":" not in key}
    acknowledged = statuses.get("200", 0) * operations if operations else statuses.get("201", 0)
    ctx.record.abuser = {
        "what": "8 connections (wrk -t2 -c8) for one user, never waiting: "
        + (f"batches of {operations} creates" if operations else "one create per request"),
        "rate_limit_policy": headers.get("ratelimit-policy", ""),
        "creates_acknowledged": acknowledged,
        **_wrk_figures(result),
    }
    missing = (
        f"{statuses.get('429:no-retry-after', 0)} without Retry-After, "
        f"{statuses.get('429:no-ratelimit', 0)} without RateLimit"
    )
    return [
        *ctx.probe_checks(),
        Check(
            "the greedy user is never answered 503 (or any 5xx)",
            ", ".join(f"{n:,} × {key}" for key, n in server_errors.items()) or "no 5xx",
            not server_errors,
        ),
        Check(
            "the greedy user gets 429 with Retry-After and RateLimit",
            f"{refused:,} × 429 of {sum(answered.values()):,} answers ({result.rps:,.0f}/s; "
            f"{acknowledged:,} creates acknowledged); {missing}",
            refused > 0 and not statuses.get("429:no-retry-after") and not statuses.get("429:no-ratelimit"),
        ),
    ]


STREAMS_OPENED, STREAM_RETRIES_PER_SECOND, STREAM_WRITES_PER_SECOND = 40, 10, 5


def many_streams(ctx: Context) -> list[Check]:
    hoarder = ctx.user("streams")
    streams = EventStreams(ctx.server.port, hoarder, ctx.token(hoarder))
    stop = threading.Event()
    writes = [0]

    def write() -> None:
        while not stop.wait(1 / STREAM_WRITES_PER_SECOND):
            _send(ctx, hoarder, "POST", f"/api/{hoarder}/tasks", {"title": f"write {writes[0]}"})
            writes[0] += 1

    writer = threading.Thread(target=write, daemon=True)
    try:
        with ctx.abused():
            first = [streams.open() for _ in range(STREAMS_OPENED)]
            writer.start()
            retries = []
            with WatchedStream(ctx.server.port, ctx.probe_user, ctx.token(ctx.probe_user)) as watched:
                deadline = time.monotonic() + ctx.seconds
                while time.monotonic() < deadline:
                    retries.append(streams.open(hold=False))
                    stop.wait(1 / STREAM_RETRIES_PER_SECOND)
            stop.set()
            writer.join(timeout=30)
    finally:
        stop.set()
        streams.close()
    answers = first + retries
    held = sum(1 for answer in first if answer.status == 200)
    cap = _max_event_streams()
    refusals = [answer for answer in answers if answer.status != 200]
    ctx.record.abuser = {
        "what": (
            f"one user opens {STREAMS_OPENED} event streams and holds them, retries "
            f"{STREAM_RETRIES_PER_SECOND} a second, writes {STREAM_WRITES_PER_SECOND} tasks a second"
        ),
        "opened": STREAMS_OPENED,
        "cap_per_process": cap,
        "held": held,
        "first": _tally(f"{a.status} {a.problem}".strip() for a in first),
        "retries": _tally(f"{a.status} {a.problem}".strip() for a in retries),
        "writes": writes[0],
        "other_stream": {"status": watched.status, "changed_events": watched.events},
    }
    return [
        *ctx.probe_checks(),
        Check(
            f"streams held ≤ the cap ({cap} per process × {WORKERS})",
            f"{held} of {STREAMS_OPENED} held",
            0 < held <= cap * WORKERS,
        ),
        Check(
            "every stream beyond the cap answers 429 with Retry-After",
            ", ".join(f"{n} × {key}" for key, n in _tally(f"{a.status} {a.problem}" for a in refusals).items()),
            bool(refusals) and all(a.status == 429 and a.retry_after for a in refusals),
        ),
        # On SQLite a stream announces only the changes its own server process made (documented
        # in GET /events): with 2 workers the probe's creates may all go through the other one.
        Check(
            "another user's stream opens" + (" and delivers its changes" if ctx.record.database != "sqlite" else ""),
            f"{watched.status}, {watched.events} changed events",
            watched.status == 200 and (watched.events > 0 or ctx.record.database == "sqlite"),
        ),
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Context], list[Check]]
    #: TODO_RATE_LIMITS for its server; None: the server's default.
    rate_limits: str | None


CATALOGUE = [
    Scenario("abuse-calendar", calendar_pollers, "none"),
    Scenario("abuse-export", slow_exports, "none"),
    Scenario("abuse-import", large_import, "none"),
    Scenario("abuse-greedy", greedy_batches, None),
    Scenario("abuse-greedy-creates", greedy_creates, None),
    Scenario("abuse-streams", many_streams, "none"),
]


# ----------------------------------------------------------------------------------------------
# Running


def run(
    stack: Stack,
    *,
    server_url: str,
    results_dir: Path,
    only: frozenset[str] = frozenset(),
    skip_sqlite: bool = False,
) -> list[Path]:
    """Every selected scenario on PostgreSQL, then on SQLite; writes the results, returns their paths."""
    seconds = float(os.environ.get("BENCH_ABUSE_SECONDS", "15"))
    baseline_seconds = float(os.environ.get("BENCH_ABUSE_BASELINE_SECONDS", "5"))
    chosen = [s for s in CATALOGUE if not only or ALL in only or s.name in only]
    from bench.run import machine_facts  # here: bench.run imports this module

    started = datetime.now(UTC)
    machine = {**machine_facts(), "loadavg_before": _loadavg()}
    records: list[Record] = []
    database = f"todo_bench_abuse_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        version = admin.execute("SHOW server_version").fetchone()
    machine["postgresql"] = version[0] if version else "?"
    try:
        url = urllib.parse.urlsplit(server_url)._replace(path="/" + database).geturl()
        records += _on(stack, "postgresql", url, chosen, seconds, baseline_seconds)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    if not skip_sqlite:
        folder = Path(tempfile.mkdtemp(prefix="abuse-sqlite-", dir=stack.scratch))
        records += _on(stack, "sqlite", f"sqlite+aiosqlite:///{folder / 'abuse.db'}", chosen, seconds, baseline_seconds)
    machine["loadavg_after"] = _loadavg()
    data = {
        "date": started.isoformat(timespec="seconds"),
        "command": _command(),
        "machine": machine,
        "settings": {"seconds": seconds, "baseline_seconds": baseline_seconds, "workers": WORKERS},
        "records": [asdict(record) for record in records],
        "duration_seconds": (datetime.now(UTC) - started).total_seconds(),
    }
    folder = results_dir / f"{started.date().isoformat()}-abuse"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abuse.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (folder / "abuse.md").write_text(markdown(data))
    print(markdown(data))
    return [folder / "abuse.json", folder / "abuse.md"]


def _on(
    stack: Stack, database: str, url: str, chosen: list[Scenario], seconds: float, baseline_seconds: float
) -> list[Record]:
    stack.migrate(url)
    records = []
    for scenario in chosen:
        record = Record(scenario.name, database, scenario.rate_limits or "the default")
        server = _start(stack, f"{scenario.name}-{database}", url, scenario.rate_limits)
        try:
            ctx = Context(stack, server, record, seconds)
            ctx.create_tasks(ctx.probe_user, [{"title": f"Open {n}"} for n in range(PROBE_TASKS)])
            record.baseline = ctx.probe.run_for(baseline_seconds)
            record.machine["loadavg"] = _loadavg()
            record.checks = scenario.run(ctx)
        finally:
            server.stop()
        record.server_log = _log_counts(server.log_path)
        record.checks.append(
            Check(
                "no 500 and no traceback in the server log",
                f"{record.server_log['500']} × 500, {record.server_log['tracebacks']} tracebacks",
                not record.server_log["500"] and not record.server_log["tracebacks"],
            )
        )
        records.append(record)
        probe = record.probe
        verdicts = " ".join("PASS" if check.passed else "FAIL" for check in record.checks)
        log(
            f"{scenario.name:<15} {database:<10} probe p50 {probe['p50_ms']:6.1f} ms  p99 {probe['p99_ms']:7.1f} ms  "
            f"max {probe['max_ms']:7.1f} ms  errors {probe['errors']}  (alone: p99 {record.baseline['p99_ms']:.1f} ms)"
            f"  {verdicts}"
        )
    return records


def _start(stack: Stack, name: str, url: str, rate_limits: str | None) -> Server:
    port = free_port()
    env = stack.todo_env(url, port, WORKERS)
    if rate_limits is None:
        env.pop("TODO_RATE_LIMITS", None)
    else:
        env["TODO_RATE_LIMITS"] = rate_limits
    log_path = stack.scratch / f"{name}.log"
    server = start_server(
        name, [str(stack.bin / "todo"), "serve"], env=env, cwd=stack.scratch, log_path=log_path, port=port
    )
    stack.servers.append(server)
    return server


# ----------------------------------------------------------------------------------------------
# Small parts


def _send(ctx: Context, user: str, method: str, path: str, body: Any) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=60)
    headers = {"Authorization": f"Bearer {ctx.token(user)}", "Content-Type": "application/json"}
    try:
        connection.request(method, path, json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        return 0, type(error).__name__.encode()
    finally:
        connection.close()


def _headers(ctx: Context, user: str, path: str) -> dict[str, str]:
    """The headers of a GET as the user (to read the limiter's `RateLimit-Policy`)."""
    connection = http.client.HTTPConnection("127.0.0.1", ctx.server.port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {ctx.token(user)}"})
        response = connection.getresponse()
        response.read()
        return {key.lower(): value for key, value in response.getheaders()}
    finally:
        connection.close()


def _wrk_figures(result: Any) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "rps": result.rps,
        "bytes": result.bytes,
        "statuses": dict(sorted(result.statuses.items())),
        "errors": result.errors,
        "p50_ms": result.latency_us["p50"] / 1000,
        "p99_ms": result.latency_us["p99"] / 1000,
        "max_ms": result.latency_us["max"] / 1000,
    }


def _tally(keys: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _max_event_streams() -> int:
    from todo_api.settings import Settings

    return int(Settings.model_fields["max_event_streams"].default)


def _log_counts(path: Path) -> dict[str, Any]:
    """The 5xx answers of a server's access log, tracebacks, and the first few reasons it logged
    for a 503 (`answered 503: … (cause)`)."""
    counts: dict[str, Any] = {"500": 0, "503": 0, "other_5xx": 0, "tracebacks": 0, "503_reasons": []}
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback") or '"exc_info"' in line:
                counts["tracebacks"] += 1
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                message, status = str(entry.get("message", "")), entry.get("status")
                if entry.get("logger") == "todo.access" and isinstance(status, int) and status >= 500:
                    key = str(status) if str(status) in counts else "other_5xx"
                    counts[key] += 1
                elif message.startswith("answered 503") and len(counts["503_reasons"]) < 3:
                    counts["503_reasons"].append(message[:300])
    return counts


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def _command() -> str:
    settings = " ".join(
        f"{key}={shlex.quote(value)}" for key, value in sorted(os.environ.items()) if key.startswith("BENCH_")
    )
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else sys.argv[0]
    return " ".join([settings, program, *map(shlex.quote, sys.argv[1:])]).strip()


def main() -> None:
    """On its own (`make bench-abuse`): a scratch folder, databases of its own, servers stopped on the way out."""
    from bench.run import Stack  # here: bench.run imports this module

    only = frozenset(name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip())
    repo = Path(__file__).resolve().parent.parent
    scratch = Path(tempfile.mkdtemp(prefix="todo-abuse-"))
    stack = Stack(scratch)
    try:
        run(
            stack,
            server_url=os.environ.get("TODO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
            results_dir=Path(os.environ.get("BENCH_RESULTS_DIR", str(repo / "bench" / "results"))),
            only=only,
            skip_sqlite=os.environ.get("BENCH_SKIP_SQLITE") == "1",
        )
    finally:
        for server in stack.servers:
            server.stop()
    log(f"servers' logs kept in {scratch}")


if __name__ == "__main__":
    main()
