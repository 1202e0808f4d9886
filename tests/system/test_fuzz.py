"""schemathesis against the real server on PostgreSQL: no 5xx, no response the document does not describe.

The same run as `make fuzz` (schemathesis.toml holds what both check and leave out, and why), bounded
to TODO_FUZZ_SECONDS (default 60) so that it fits in `make test`; set it higher for a longer run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.test_persistence import Deployment, clean_environment, postgres_deployment, todo_command
from todo_api.cli import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FUZZ_SECONDS = int(os.environ.get("TODO_FUZZ_SECONDS", "60"))
# Past the budget: loading the schema, and the requests still in flight when it is spent.
OVERRUN_SECONDS = 60
USER = "fuzz-user"
SERVER_LOG_TAIL = 6000


@pytest.fixture
def deployment(postgres_server_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh, migrated PostgreSQL database of the test's own, and the settings that serve it."""
    with postgres_deployment(postgres_server_url, tmp_path) as deployment:
        yield deployment


def token_from_the_cli(deployment: Deployment, ttl_seconds: int) -> str:
    minted = subprocess.run(
        todo_command("token", USER, "--ttl", str(ttl_seconds)),
        env=deployment.environment,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert minted.returncode == 0, minted.stderr.decode(errors="replace")
    return minted.stdout.decode().strip()


def schemathesis_command(base_url: str, report: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(PROJECT_ROOT / "schemathesis.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--max-time",
        str(FUZZ_SECONDS),
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]


def test_fuzzing_finds_no_server_error_and_no_undocumented_response(deployment: Deployment, tmp_path: Path) -> None:
    token = token_from_the_cli(deployment, ttl_seconds=FUZZ_SECONDS + OVERRUN_SECONDS + 600)
    report = tmp_path / "report.json"
    server = deployment.start(run=1)
    try:
        server.wait_until_healthy()
        try:
            # In tmp_path: schemathesis keeps its cache and examples database in the working directory.
            run = subprocess.run(
                schemathesis_command(server.base_url, report),
                env={
                    **clean_environment(TODO_FUZZ_TOKEN=token, TODO_FUZZ_USER=USER),
                    "SCHEMATHESIS_HOOKS": str(PROJECT_ROOT / "scripts" / "fuzz_hooks.py"),
                },
                cwd=tmp_path,
                capture_output=True,
                timeout=FUZZ_SECONDS + OVERRUN_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as overrun:
            so_far = (overrun.stdout or b"").decode(errors="replace")
            pytest.fail(f"schemathesis overran its {FUZZ_SECONDS} s budget by {OVERRUN_SECONDS} s:\n{so_far}")
    finally:
        server.stop()
    output = run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")
    # The end of the server's log holds the traceback of a 5xx.
    assert run.returncode == 0, f"{output}\n--- the end of the server's log ---\n{server.output()[-SERVER_LOG_TAIL:]}"
    summary = json.loads(report.read_text())
    # Stateful testing ran: it is skipped when the document has no links and none could be inferred.
    assert summary["phases"]["stateful"]["status"] == "success", output
