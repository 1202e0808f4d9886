"""The Markdown report of `bench.abuse`: one line per scenario and database, then every target
with its measure, then the server's gauges and log; `abuse.json` keeps every figure."""

from __future__ import annotations

from typing import Any


def _ms(figures: dict[str, Any]) -> str:
    return f"{figures['p50_ms']:.1f} / {figures['p99_ms']:.1f} / {figures['max_ms']:.0f}"


def _abuser_summary(record: dict[str, Any]) -> str:
    abuser = record["abuser"]
    name = record["scenario"]
    if name == "abuse-calendar":
        statuses = ", ".join(f"{n:,} × {key}" for key, n in abuser["statuses"].items())
        return (
            f"{abuser['rps']:,.0f} polls/s ({statuses}), {abuser['bytes'] / 1e6:,.1f} MB, "
            f"{abuser['owner_changes']} changes by the owner"
        )
    if name == "abuse-export":
        refused = ", ".join(f"{n} × {key}" for key, n in abuser["refused"].items()) or "none refused"
        return (
            f"{abuser['accepted']} accepted ({abuser['complete']} complete, "
            f"{abuser['document_bytes'] / 1024:,.0f} KiB, slowest {abuser['slowest_seconds']:.0f} s), {refused}"
        )
    if name == "abuse-import":
        return f"{abuser['status']} in {abuser['seconds']:.1f} s, {abuser['bytes'] / 1e6:.1f} MB"
    if name.startswith("abuse-greedy"):
        shown = {key: n for key, n in abuser["statuses"].items() if key[:1].isdigit()}
        return f"{abuser['rps']:,.0f} req/s: " + ", ".join(f"{n:,} × {key}" for key, n in shown.items())
    other = abuser["other_stream"]
    return (
        f"{abuser['held']} of {abuser['opened']} held; retries: "
        + ", ".join(f"{n} × {key}" for key, n in abuser["retries"].items())
        + f"; other user's stream {other['status']}, {other['changed_events']} events"
    )


def markdown(data: dict[str, Any]) -> str:
    machine = data["machine"]
    lines = [
        f"# Abuse scenarios (issue 19), {data['date']}",
        "",
        f"Command: `{data['command']}` at commit `{machine['git_commit'][:7]}`"
        + (" (uncommitted changes)" if machine["git_dirty"] else "")
        + f"; {data['duration_seconds'] / 60:.1f} minutes.",
        "",
        f"Machine: {machine['nproc']} cores ({machine['cpu_model']}), {machine['memory']}, PostgreSQL "
        f"{machine.get('postgresql', '')}; **shared with several engineers' work while it ran**: load average "
        f"{machine['loadavg_before']} before, {machine['loadavg_after']} after (1, 5, 15 min), "
        f"{machine['busy_before_start']:.0%} busy the second before it started. Every figure below is from "
        "one run on this busy machine: read the probe's latency alone (the baseline) next to it under abuse.",
        "",
        f"Each scenario: a fresh `todo serve` ({data['settings']['workers']} workers); a probe user lists 50 and "
        f"creates one in turns, 10 requests a second, alone for {data['settings']['baseline_seconds']:.0f} s "
        f"(baseline), then while the abuser runs (~{data['settings']['seconds']:.0f} s). Probe figures: "
        "p50 / p99 / max in ms, client side, loopback.",
        "",
        "| scenario | database | rate limits | abuser's outcome | probe alone | probe under abuse | probe errors | "
        "machine busy | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for record in data["records"]:
        passed = all(check["passed"] for check in record["checks"])
        lines.append(
            f"| {record['scenario']} | {record['database']} | {record['rate_limits']} | {_abuser_summary(record)} | "
            f"{_ms(record['baseline'])} | {_ms(record['probe'])} | {record['probe']['errors']} | "
            f"{record['machine'].get('busy_share', 0):.0%} | {'PASS' if passed else '**FAIL**'} |"
        )
    lines += ["", "## Targets", "", "| scenario | database | target | measured | result |", "|---|---|---|---|---|"]
    for record in data["records"]:
        for check in record["checks"]:
            lines.append(
                f"| {record['scenario']} | {record['database']} | {check['target']} | {check['measured']} | "
                f"{'PASS' if check['passed'] else '**FAIL**'} |"
            )
    lines += ["", "## Server gauges and log", ""]
    lines += ["| scenario | database | highest gauges (sampled every 0.5 s) | log |", "|---|---|---|---|"]
    for record in data["records"]:
        gauges = ", ".join(f"{key} {value:,.0f}" for key, value in sorted(record["gauges"].items()))
        logged = (
            ", ".join(f"{n} × {key}" for key, n in record["server_log"].items() if isinstance(n, int) and n)
            or "no 5xx, no traceback"
        )
        logged += "".join(f"; `{reason}`" for reason in record["server_log"].get("503_reasons", []))
        lines.append(f"| {record['scenario']} | {record['database']} | {gauges} | {logged} |")
    lines += ["", "The abusers' every figure, the probe's per list and create: `abuse.json` next to this file.", ""]
    return "\n".join(lines)
