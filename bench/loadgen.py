"""wrk runs: the command, its JSON result (printed by `wrk/common.lua`), and CPU time around it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import children_cpu_seconds, machine_busy_seconds, tree_cpu_seconds

WRK_DIR = Path(__file__).resolve().parent / "wrk"
TIMEOUT = "2s"  # wrk's default, said out loud: a request slower than this counts as a timeout


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        """Every failed request: non-2xx/3xx answers, connect/read/write errors and timeouts."""
        return sum(self.errors.values())

    @property
    def ok_responses(self) -> int:
        return self.requests - self.errors.get("status", 0)


@dataclass
class Measurement:
    """One measured wrk run against one server, with the CPU both sides spent during it."""

    scenario: str
    server: str
    round: int
    url: str
    threads: int
    connections: int
    seconds: float
    rps: float
    requests: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    max_us: float
    errors: dict[str, int]
    error_count: int
    timeouts: int
    statuses: dict[str, int]
    bytes_per_response: float
    server_cpu_s: float
    pg_cpu_s: float | None
    server_us_per_request: float | None
    pg_us_per_request: float | None
    # The machine's busy CPU time during the run that neither the server, PostgreSQL nor wrk
    # used, as a share of all cores: other work on the machine that disturbed the run.
    other_cpu_share: float | None = None
    notes: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        result: WrkResult,
        *,
        server_cpu: float,
        pg_cpu: float | None,
        requests_for_cpu: int,
        **run: Any,
    ) -> Measurement:
        """A wrk result with the CPU time spent during it, shared over `requests_for_cpu`
        requests (more than wrk's own when another wrk ran against the same server)."""
        per_request = 1e6 / requests_for_cpu if requests_for_cpu else None
        latency = result.latency_us
        return cls(
            rps=result.rps,
            requests=result.requests,
            p50_us=latency["p50"],
            p90_us=latency["p90"],
            p99_us=latency["p99"],
            mean_us=latency["mean"],
            max_us=latency["max"],
            errors=result.errors,
            error_count=result.error_count,
            timeouts=result.errors.get("timeout", 0),
            statuses=result.statuses,
            bytes_per_response=result.bytes / result.requests if result.requests else 0.0,
            server_cpu_s=server_cpu,
            pg_cpu_s=pg_cpu,
            server_us_per_request=server_cpu * per_request if per_request else None,
            pg_us_per_request=pg_cpu * per_request if per_request and pg_cpu is not None else None,
            **run,
        )


def run_wrk(
    url: str,
    script: str,
    *,
    args: Sequence[str] = (),
    threads: int,
    connections: int,
    seconds: float,
    env: Mapping[str, str] | None = None,
) -> WrkResult:
    """Run wrk once and return what `done()` printed."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={TIMEOUT}",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    if args:
        command += ["--", *args]
    run_env = {**os.environ, **(env or {}), "LUA_PATH": f"{WRK_DIR}/?.lua;;"}
    finished = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in finished.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            return WrkResult(
                requests=data["requests"],
                duration_s=data["duration_us"] / 1e6,
                bytes=data["bytes"],
                errors=data["errors"],
                latency_us=data["latency_us"],
                statuses=data["statuses"],
            )
    raise RuntimeError(
        f"wrk printed no result (exit {finished.returncode}): {' '.join(command)}\n"
        f"{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}"
    )


def measure(
    scenario: str,
    server: str,
    round_number: int,
    url: str,
    script: str,
    *,
    server_pid: int,
    pg_pid: int | None,
    args: Sequence[str] = (),
    threads: int,
    connections: int,
    seconds: float,
    warmup_seconds: float = 0,
    env: Mapping[str, str] | None = None,
    prepare: Callable[[], None] | None = None,
) -> tuple[Measurement, WrkResult | None]:
    """A warm-up run (not measured), then the measured run with CPU time read around it.
    `prepare` runs before each of them (to rewrite a data file the script reads).

    Returns the measurement and the warm-up's result (its created rows count too)."""
    warmup = None
    if warmup_seconds > 0:
        if prepare:
            prepare()
        warmup = run_wrk(
            url, script, args=args, threads=threads, connections=connections, seconds=warmup_seconds, env=env
        )
    if prepare:
        prepare()
    machine_before, wrk_before = machine_busy_seconds(), children_cpu_seconds()
    server_before = tree_cpu_seconds(server_pid)
    pg_before = tree_cpu_seconds(pg_pid) if pg_pid else None
    result = run_wrk(url, script, args=args, threads=threads, connections=connections, seconds=seconds, env=env)
    server_cpu = tree_cpu_seconds(server_pid) - server_before
    pg_cpu = tree_cpu_seconds(pg_pid) - pg_before if pg_pid and pg_before is not None else None
    wrk_cpu = children_cpu_seconds() - wrk_before
    machine_cpu = machine_busy_seconds() - machine_before
    measurement = Measurement.of(
        result,
        server_cpu=server_cpu,
        pg_cpu=pg_cpu,
        requests_for_cpu=result.requests,
        scenario=scenario,
        server=server,
        round=round_number,
        url=url,
        threads=threads,
        connections=connections,
        seconds=seconds,
        other_cpu_share=other_share(machine_cpu, server_cpu + (pg_cpu or 0) + wrk_cpu, result.duration_s),
    )
    return measurement, warmup


def other_share(machine_cpu: float, accounted_cpu: float, duration_s: float) -> float | None:
    capacity = duration_s * (os.cpu_count() or 1)
    return max(0.0, machine_cpu - accounted_cpu) / capacity if capacity else None
