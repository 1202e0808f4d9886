"""Summaries, target checks, the Markdown report and the latency plot, from a run's JSON.

python -m bench.report bench/results/2026-11-27.json   # re-render the .md and .png
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import calendar_load, layers

SERVER_NOTES = {
    "todo": "`todo serve`, 2 workers, PostgreSQL (psycopg 3), real JWT check",
    "ceiling": "FastAPI + pydantic response model, the same 50 tasks from memory, no database, no token check",
    "naive": (
        "FastAPI + SQLModel sync Session per request, offset paging, PyJWT check per request; its create writes "
        "the `tasks` row only (no `task_tags` rows), so it does less work than todo's"
    ),
}
SCENARIO_NOTES = {
    "list-50": "`GET /api/{u}/tasks?status=pending&limit=50` (the 50 open tasks of a 50-task user)",
    "list-tag-sort": "`?tag=work&sort=-due_at` on the 10,000-task user",
    "list-deep": "a keyset page `BENCH_DEEP_PAGES` cursors deep into the 100,000-task user",
    "get": "`GET /api/{u}/tasks/{id}`, random ids of the 10,000-task user",
    "create": "`POST /api/{u}/tasks` (title, priority, 0-3 tags, due date 65 % of the time)",
    "create-100k": "as create, for the 100,000-task user",
    "complete": "`PATCH …/{id}/complete`, every request flips a task, spread over 10,000 tasks",
    "create-spread": "`POST /api/{u}/tasks` spread over 100 users, each with their own token (as create)",
    "mixed": "100 users with their own tokens: 60 % list, 20 % get, 10 % create, 10 % complete",
    "sqlite-list": "SQLite file, list-50 of a 200-task user",
    "sqlite-create": "SQLite file, create",
    "sqlite-mixed-list": "SQLite, 16 connections listing while 4 create (same time)",
    "sqlite-mixed-create": "SQLite, 4 connections creating while 16 list (same time)",
}


# Above this share of the machine's CPU used by other processes during runs, the report warns.
OTHER_LOAD_WARNING = 0.05


def _median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario and server: the median of the rounds (errors and timeouts: their sum)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if run["scenario"] != "growth":
            groups.setdefault((run["scenario"], run["server"]), []).append(run)
    summary = []
    for (scenario, server), rounds in groups.items():
        summary.append(
            {
                "scenario": scenario,
                "server": server,
                "rounds": len(rounds),
                "rps": _median(run["rps"] for run in rounds),
                "rps_rounds": [round(run["rps"], 1) for run in rounds],
                "p50_us": _median(run["p50_us"] for run in rounds),
                "p99_us": _median(run["p99_us"] for run in rounds),
                "mean_us": _median(run["mean_us"] for run in rounds),
                "requests": sum(run["requests"] for run in rounds),
                "errors": sum(run["error_count"] for run in rounds),
                "timeouts": sum(run["timeouts"] for run in rounds),
                "server_us_per_request": _median(run["server_us_per_request"] for run in rounds),
                "pg_us_per_request": _median(run["pg_us_per_request"] for run in rounds),
                "bytes_per_response": _median(run["bytes_per_response"] for run in rounds),
                "other_cpu_share": _median(run.get("other_cpu_share") for run in rounds),
            }
        )
    return summary


def _find(summary: Sequence[dict[str, Any]], scenario: str, server: str) -> dict[str, Any] | None:
    return next((row for row in summary if row["scenario"] == scenario and row["server"] == server), None)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def ratios(summary: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """todo against each baseline; None (no ratio) where either side had an error or a
    timeout: a baseline that failed requests did other work than todo did."""
    found: dict[str, float | None] = {}
    for scenario in ("list-50", "create"):
        todo = _find(summary, scenario, "todo")
        if todo is None:
            continue
        for baseline in ("ceiling", "naive"):
            other = _find(summary, scenario, baseline)
            if other is not None and (other["errors"] or other["timeouts"] or todo["errors"] or todo["timeouts"]):
                found[f"{scenario} req/s todo/{baseline}"] = None
                found[f"{scenario} server CPU per request {baseline}/todo"] = None
            elif other is not None:
                found[f"{scenario} req/s todo/{baseline}"] = _ratio(todo["rps"], other["rps"])
                found[f"{scenario} server CPU per request {baseline}/todo"] = _ratio(
                    other["server_us_per_request"], todo["server_us_per_request"]
                )
    return found


def growth_ratios(growth: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per sort and page: p50 (and mean) latency of each user, and the 100k/50 ratio. The
    50-task user has one page only: a deep page of 100k is compared with that page."""
    by_key = {(row["user"], row["sort"], row["page"]): row for row in growth}
    users = sorted({(row["tasks"], row["user"]) for row in growth})
    if not users:
        return []
    smallest, largest = users[0][1], users[-1][1]
    rows = []
    for sort in dict.fromkeys(row["sort"] for row in growth):
        for page in ("first", "deep"):
            big = by_key.get((largest, sort, page))
            small = by_key.get((smallest, sort, page)) or by_key.get((smallest, sort, "first"))
            if big is None or small is None:
                continue
            rows.append(
                {
                    "sort": sort,
                    "page": page,
                    "pages_deep": big["pages_deep"],
                    "p50_us": {str(tasks): by_key.get((user, sort, page), {}).get("p50_us") for tasks, user in users},
                    "mean_us": {str(tasks): by_key.get((user, sort, page), {}).get("mean_us") for tasks, user in users},
                    "ratio_p50": _ratio(big["p50_us"], small["p50_us"]),
                    "ratio_mean": _ratio(big["mean_us"], small["mean_us"]),
                }
            )
    return rows


def _target(name: str, value: float | None, passed: bool | None, shown: str) -> dict[str, Any]:
    return {
        "target": name,
        "value": value,
        "shown": shown,
        "result": "n/a" if passed is None else "PASS" if passed else "FAIL",
    }


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    summary, found = data["summary"], data["ratios"]
    todo_list = _find(summary, "list-50", "todo") or {}
    checks = []
    value = found.get("list-50 req/s todo/ceiling")
    checks.append(
        _target("list-50 req/s todo ÷ ceiling ≥ 0.35", value, None if value is None else value >= 0.35, _x(value))
    )
    value = todo_list.get("server_us_per_request")
    checks.append(
        _target("list-50 todo server CPU ≤ 450 µs/request", value, None if value is None else value <= 450, _us(value))
    )
    value = found.get("list-50 req/s todo/naive")
    checks.append(_target("list-50 req/s todo ÷ naive ≥ 8", value, None if value is None else value >= 8, _x(value)))
    value = todo_list.get("p99_us")
    checks.append(_target("list-50 todo p99 < 50 ms", value, None if value is None else value < 50_000, _ms(value)))
    postgres = [row for row in summary if row["server"] == "todo" and not row["scenario"].startswith("sqlite")]
    value = sum(row["errors"] for row in postgres) if postgres else None
    checks.append(
        _target(
            "zero errors (todo, every PostgreSQL scenario)", value, None if value is None else value == 0, str(value)
        )
    )
    value = found.get("create req/s todo/naive")
    checks.append(_target("create req/s todo ÷ naive ≥ 4", value, None if value is None else value >= 4, _x(value)))
    lost = sum(check["lost"] for check in data["create_checks"]) if data["create_checks"] else None
    checks.append(
        _target("every acknowledged create is stored", lost, None if lost is None else lost == 0, f"{lost} lost")
    )
    growth = [row["ratio_p50"] for row in data["growth_ratios"] if row["ratio_p50"] is not None]
    value = max(growth) if growth else None
    checks.append(
        _target(
            "growth ≤ 1.3× (p50, 100k vs 50 tasks, worst sort/page)",
            value,
            None if value is None else value <= 1.3,
            _x(value),
        )
    )
    workers = [entry["rss_mb"] for entry in data["rss"] if entry["server"] == "todo" and entry["role"] == "worker"]
    value = max(workers) if workers else None
    checks.append(_target("RSS < 150 MB per todo worker", value, None if value is None else value < 150, _mb(value)))
    mixed = [row for row in summary if row["scenario"].startswith("sqlite-mixed")]
    value = max(row["p99_us"] for row in mixed) if mixed else None
    timeouts = sum(row["timeouts"] for row in mixed)
    passed = None if value is None else value < 100_000 and timeouts == 0
    checks.append(
        _target("SQLite mixed load p99 < 100 ms, no timeouts", value, passed, f"{_ms(value)}, {timeouts} timeouts")
    )
    return checks


# ----------------------------------------------------------------------------------------------
# Formatting


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} µs"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value / 1000:,.1f} ms"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} MB"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def disturbance(data: dict[str, Any]) -> str | None:
    """A warning when other work on the machine took a noticeable share of it during the runs."""
    shares = [run["other_cpu_share"] for run in data["runs"] if run.get("other_cpu_share") is not None]
    if not shares or statistics.median(shares) < OTHER_LOAD_WARNING:
        return None
    return (
        f"**Warning: this run was disturbed.** Processes other than the servers, PostgreSQL and wrk kept "
        f"{statistics.median(shares):.0%} of the machine's CPU busy (median over runs; worst "
        f"{max(shares):.0%}). Numbers from such a run are low and noisy; run again on a quiet machine."
    )


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(data: dict[str, Any]) -> str:
    return table(
        [
            "scenario",
            "server",
            "req/s",
            "p50",
            "p99",
            "errors",
            "timeouts",
            "server µs/req",
            "PG µs/req",
            "req/s by round",
            "other load",
        ],
        (
            [
                row["scenario"],
                row["server"],
                _num(row["rps"]),
                _ms(row["p50_us"]),
                _ms(row["p99_us"]),
                row["errors"],
                row["timeouts"],
                _num(row["server_us_per_request"]),
                _num(row["pg_us_per_request"]),
                " / ".join(f"{rps:,.0f}" for rps in row["rps_rounds"]),
                _percent(row.get("other_cpu_share")),
            ]
            for row in data["summary"]
        ),
    )


def ratios_table(data: dict[str, Any]) -> str:
    return table(["ratio", "value"], ([name, _x(value)] for name, value in data["ratios"].items()))


def targets_table(data: dict[str, Any]) -> str:
    return table(["target", "measured", "result"], ([t["target"], t["shown"], t["result"]] for t in data["targets"]))


def growth_table(data: dict[str, Any]) -> str:
    rows = data["growth_ratios"]
    if not rows:
        return "(no growth measurements)"
    sizes = list(rows[0]["p50_us"])
    headers = [
        "sort",
        "page",
        *(f"p50 {int(size):,} tasks" for size in sizes),
        "mean 100k",
        "p50 100k ÷ 50",
        "mean 100k ÷ 50",
    ]
    return table(
        headers,
        (
            [
                f"`{row['sort']}`",
                row["page"] + (f" ({row['pages_deep']} pages)" if row["page"] == "deep" else ""),
                *(_ms(row["p50_us"][size]) for size in sizes),
                _ms(row["mean_us"][sizes[-1]]),
                _x(row["ratio_p50"]),
                _x(row["ratio_mean"]),
            ]
            for row in rows
        ),
    )


def markdown(data: dict[str, Any], plot_name: str | None) -> str:
    machine, config, seed = data["machine"], data["config"], data["seed"]
    plan = seed.get("plan", {})
    parts = [
        f"# Benchmark {data['date']}",
        "",
        f"{machine['nproc']} × {machine['cpu_model']}, {machine['memory']}, Linux {machine['kernel']}, "
        f"{machine.get('busy_before_start', 0):.0%} busy just before the run, "
        f"Python {machine['python']}, PostgreSQL {machine.get('postgresql', '?')}, {machine['wrk']}; "
        f"commit `{machine['git_commit'][:12]}`{' (with uncommitted changes)' if machine['git_dirty'] else ''}; "
        f"run took {data['duration_seconds'] / 60:.1f} min.",
        "",
        f"wrk -t{config['threads']} -c{config['connections']}, {config['warmup_seconds']:.0f} s warm-up then "
        f"{config['seconds']:.0f} s measured, {config['rounds']} round(s) with the servers alternating; medians of the "
        "rounds (errors and timeouts: sums). CPU per request is the user + system time of the server's whole "
        "process tree (and of every PostgreSQL process) read from /proc around the measured run, divided by the "
        "requests wrk completed. Server, PostgreSQL and wrk share the machine's cores. *Other load* is the "
        "machine's busy CPU time during a run that none of them used, as a share of all cores: other work "
        "that disturbed the measurement (PostgreSQL work for other databases is inside the PG column).",
        "",
        f"Data: {seed.get('tasks', 0):,} tasks, {seed.get('task_tags', 0):,} tag rows and "
        f"{seed.get('categories', 0):,} categories of {seed.get('users', 0):,} users "
        f"({plan.get('general_users', '?')} with "
        f"{plan.get('general_min_tasks', '?')}-{plan.get('general_max_tasks', '?')} tasks, ~30 % completed; measured "
        "users with 50 (all open), 10,000 and 100,000 tasks), seeded with COPY in "
        f"{seed.get('seconds', 0):.1f} s.",
        "",
        *([warning, ""] if (warning := disturbance(data)) else []),
        "## Targets",
        "",
        targets_table(data),
        "",
        "## Throughput, latency and CPU per request",
        "",
        main_table(data),
        "",
        ratios_table(data),
        "",
        "Servers: " + "; ".join(f"**{name}**: {note}" for name, note in SERVER_NOTES.items()) + ".",
        "",
        "Scenarios: " + "; ".join(f"**{name}**: {note}" for name, note in SCENARIO_NOTES.items()) + ".",
        "",
    ]
    payload = data.get("payload_check") or {}
    if payload:
        parts += [
            f"The list-50 page has {payload['todo_items']} items ({payload['todo_bytes']:,} bytes); the naive app "
            f"returns the same ids: {payload['naive_same_ids']}; the ceiling the same bytes: "
            f"{payload['ceiling_same_bytes']}, and the same `Link` header: {payload['ceiling_same_link']} (checked "
            "before measuring). No ratio is computed against a baseline, or for todo, with errors or timeouts "
            "in that scenario.",
            "",
        ]
    parts += [
        "### Creates acknowledged and stored",
        "",
        "Every 201 wrk saw must be a row in the database (titles carry a marker per run). More rows than 201s is "
        "expected: requests in flight when wrk stops are stored but never acknowledged.",
        "",
        table(
            ["scenario", "server", "round", "201s seen", "rows stored", "lost"],
            (
                [c["scenario"], c["server"], c["round"], c["acknowledged"], c["stored"], c["lost"]]
                for c in data["create_checks"]
            ),
        ),
        "",
        "## Growth: list latency against the user's task count",
        "",
        f"wrk -t{config['threads']} -c4, {config['growth_seconds']:.0f} s per page, limit=50, todo on PostgreSQL. "
        'Deep pages are reached by following each page\'s `Link: <…>; rel="next"`.',
        "",
        growth_table(data),
        "",
    ]
    if plot_name:
        parts += [f"![list latency against task count]({plot_name})", ""]
    sqlite = data.get("sqlite") or {}
    sqlite_rows = [row for row in data["summary"] if row["scenario"].startswith("sqlite")]
    if sqlite_rows:
        parts += [
            "## SQLite (the embedded default)",
            "",
            f"`todo serve` with 2 workers on a SQLite file; {sqlite.get('tasks', '?')} tasks seeded through the API "
            f"in {sqlite.get('seed_seconds', 0):.1f} s. In the mixed rows both wrk processes run at once and the "
            "server's CPU time is divided by the requests of both.",
            "",
            table(
                ["scenario", "req/s", "p50", "p99", "errors", "timeouts", "server µs/req"],
                (
                    [
                        row["scenario"],
                        _num(row["rps"]),
                        _ms(row["p50_us"]),
                        _ms(row["p99_us"]),
                        row["errors"],
                        row["timeouts"],
                        _num(row["server_us_per_request"]),
                    ]
                    for row in sqlite_rows
                ),
            ),
            "",
        ]
    if data.get("calendar"):
        parts += [calendar_load.markdown(data["calendar"])]
    if data.get("layers"):
        parts += [
            "## What each layer of a list-50 request costs (one process)",
            "",
            "`python -m bench.layers`: the app built in one process (settings as `todo serve`'s, JSON access "
            "log and multiprocess metrics on), called directly (no server, no socket: uvicorn's share is not "
            "in it), one request after another; each row adds one layer around the ones above it.",
            "",
            "```",
            layers.console(data["layers"]),
            "```",
            "",
        ]
    parts += [
        "## Memory after the PostgreSQL runs",
        "",
        table(
            ["server", "process", "pid", "RSS"],
            ([entry["server"], entry["role"], entry["pid"], _mb(entry["rss_mb"])] for entry in data["rss"]),
        ),
        "",
        "## Plans PostgreSQL ran for the list queries",
        "",
        "Captured with `auto_explain` (ANALYZE, BUFFERS) for the bench database only, from a one-worker todo "
        "server: the second of two identical requests.",
        "",
    ]
    if data.get("explain_note"):
        parts += [data["explain_note"], ""]
    for entry in data["explain"]:
        plans = "\n\n".join(entry["plans"]) or "(no plan captured)"
        parts += [
            f"<details><summary>{entry['query']}</summary>",
            "",
            f"`{entry['path'][:160]}{'…' if len(entry['path']) > 160 else ''}`",
            "",
            "```",
            plans,
            "```",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def console(data: dict[str, Any]) -> str:
    return "\n".join(
        [
            "",
            main_table(data),
            "",
            ratios_table(data),
            "",
            growth_table(data),
            "",
            "Targets (the bench does not fail on a miss):",
            *(f"  {t['result']:<4}  {t['target']}: {t['shown']}" for t in data["targets"]),
            "",
            *([calendar_load.markdown(data["calendar"])] if data.get("calendar") else []),
            *([layers.console(data["layers"]), ""] if data.get("layers") else []),
            *([warning.replace("**", ""), ""] if (warning := disturbance(data)) else []),
        ]
    )


def plot(data: dict[str, Any], path: Path) -> bool:
    """p50 list latency against the user's task count: one line per sort, first and deep pages."""
    growth = data["growth"]
    if not growth:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    sorts = list(dict.fromkeys(row["sort"] for row in growth))
    colors = plt.get_cmap("tab10")
    for position, (axis, page) in enumerate(zip(axes, ("first", "deep"), strict=True)):
        for index, sort in enumerate(sorts):
            points = sorted(
                (row["tasks"], row["p50_us"] / 1000)
                for row in growth
                if row["sort"] == sort
                and (row["page"] == page or (page == "deep" and row["tasks"] == min_tasks(growth)))
            )
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(
                    xs, ys, marker="o", color=colors(index % 10), linestyle="-" if index % 2 == 0 else "--", label=sort
                )
        axis.set_xscale("log")
        axis.set_xlabel("tasks of the user (log)")
        axis.set_title("first page" if page == "first" else "deep page (the 50-task user: its only page)")
        axis.grid(True, which="both", alpha=0.3)
        if position == 0:
            axis.set_ylabel("p50 latency, ms (wrk -c4)")
    axes[1].legend(loc="upper left", fontsize="small", ncol=2)
    figure.suptitle(f"todo list latency, limit=50, PostgreSQL ({data['date']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def min_tasks(growth: Sequence[dict[str, Any]]) -> int:
    return min(row["tasks"] for row in growth)


def write(data: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{data['date']}.json"
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    plot_path = directory / f"{data['date']}-list-latency.png"
    written = [json_path]
    if plot(data, plot_path):
        written.append(plot_path)
    md_path = directory / f"{data['date']}.md"
    md_path.write_text(markdown(data, plot_path.name if plot_path in written else None) + "\n")
    written.append(md_path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    source = Path(arguments[0])
    data = json.loads(source.read_text())
    for path in write(data, source.parent):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
