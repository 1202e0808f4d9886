"""A front end's own tests, in TypeScript, run by node's test runner against `todo serve` on SQLite
and on PostgreSQL: plain `fetch` as a Next.js page calls the API, and each answer used as the
page uses it (`consumer/front-end.test.mts`); and the TypeScript client's paging run for real
(`consumer/client.test.mts`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.interop.conftest import INTEROP_DIR, install_node_modules, node_executable, run_tool
from tests.system.test_persistence import Deployment, Server, deployed, postgres_deployment
from todo_adapters.auth import mint_token

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("typescript")]  # compiles TypeScript, starts servers and Node

CONSUMER_DIR = INTEROP_DIR / "consumer"
NODE_TEST_TIMEOUT_SECONDS = 120
#: The tests of consumer/*.test.mts: node must report each of them passed.
CONSUMER_TESTS = 10
USER = "front end user@example.com"  # an id with characters a URL must encode


@pytest.fixture(scope="module")
def compiled_consumer_tests(typescript_client: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The consumer tests compiled by the TypeScript client's own `tsc` (strict, type-checked),
    against the Node types tests/interop/package-lock.json pins; the client with them, as ES
    modules that find the client's packages (openapi-fetch)."""
    install_node_modules(INTEROP_DIR)
    out = tmp_path_factory.mktemp("consumer")
    result = run_tool(typescript_client, "tsc", "-p", CONSUMER_DIR / "tsconfig.json", "--outDir", out)
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "package.json").write_text('{"type": "module"}\n')
    (out / "node_modules").symlink_to(typescript_client / "node_modules", target_is_directory=True)
    return sorted((out / CONSUMER_DIR.relative_to(INTEROP_DIR.parent.parent)).glob("*.test.mjs"))


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """`todo serve` on a migrated database of the test's own."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()

    def serve(deployment: Deployment) -> Iterator[Server]:
        started = deployment.start(run=1)
        try:
            started.wait_until_healthy()
            yield started
        finally:
            started.stop()

    if request.param == "sqlite":
        yield from serve(deployed(f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}", workdir))
        return
    with postgres_deployment(request.getfixturevalue("postgres_server_url"), workdir) as deployment:
        yield from serve(deployment)


def test_a_front_ends_own_tests_pass_against_the_api(compiled_consumer_tests: list[Path], server: Server) -> None:
    environment = {
        "PATH": "/usr/bin:/bin",
        "TODO_API_URL": server.base_url,
        "TODO_USER_ID": USER,
        "TODO_TOKEN": mint_token(TEST_SECRET, USER),
    }
    result = subprocess.run(
        [node_executable(), "--test", "--test-reporter=tap", *compiled_consumer_tests],
        env=environment,
        capture_output=True,
        text=True,
        timeout=NODE_TEST_TIMEOUT_SECONDS,
        check=False,
    )

    report = result.stdout + result.stderr
    assert result.returncode == 0, f"{report}\nserver log:\n{server.output()}"
    assert f"# pass {CONSUMER_TESTS}\n" in report and "# fail 0\n" in report, report
