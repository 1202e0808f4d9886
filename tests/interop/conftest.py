"""Tests that need Node.js: a real Better Auth JWT issuer (`issuer.mjs`) for tests that need
genuine tokens, and the TypeScript client (`clients/typescript`) with its tools."""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import httpx
import pytest

from tests.conftest import settings_for
from todo_api.cli import openapi_document

INTEROP_DIR = Path(__file__).parent
TYPESCRIPT_CLIENT_DIR = INTEROP_DIR.parent.parent / "clients" / "typescript"
NPM_CI_TIMEOUT_SECONDS = 300
READY_TIMEOUT_SECONDS = 30
MINT_TIMEOUT_SECONDS = 10
STOP_TIMEOUT_SECONDS = 5
TOOL_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class BetterAuthIssuer:
    """A running Better Auth server; its base URL is the `iss` and `aud` of its tokens."""

    base_url: str

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/api/auth/jwks"

    def mint(self, email: str) -> tuple[str, str]:
        """Return a Better Auth JWT for the user with this email (signed up on first use)
        and that user's id."""
        response = httpx.post(f"{self.base_url}/mint", json={"email": email}, timeout=MINT_TIMEOUT_SECONDS)
        response.raise_for_status()
        body = response.json()
        return body["token"], body["user_id"]


def _unavailable(reason: str) -> NoReturn:
    # CI sets TODO_REQUIRE_INTEROP=1 so that a missing Node fails instead of passing quietly.
    if os.environ.get("TODO_REQUIRE_INTEROP") == "1":
        pytest.fail(f"Node.js interop required but unavailable: {reason}")
    pytest.skip(f"Node.js interop unavailable: {reason} (set TODO_REQUIRE_INTEROP=1 to fail)")


def node_executable() -> str:
    """The path of `node`.

    :raises pytest.skip.Exception: there is none (`pytest.fail.Exception` under TODO_REQUIRE_INTEROP=1).
    """
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH")
    return node


def install_node_modules(directory: Path) -> None:
    """Install the packages `directory`'s package-lock.json pins, unless `npm ci` has installed
    them since the lock file last changed (`make client` goes by the same rule).

    :raises pytest.skip.Exception: no npm, or `npm ci` failed (`pytest.fail.Exception` under
        TODO_REQUIRE_INTEROP=1).
    """
    # Two pytest-xdist workers may need the same packages at once: one installs while the other
    # waits on the lock file, then finds them installed.
    with (directory / "package-lock.json").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install_unless_installed(directory)


def _install_unless_installed(directory: Path) -> None:
    installed = directory / "node_modules" / ".package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= (directory / "package-lock.json").stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("`npm` is not on PATH")
    try:
        result = subprocess.run(
            [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"`npm ci` took longer than {NPM_CI_TIMEOUT_SECONDS} s")
    if result.returncode != 0:
        _unavailable(f"`npm ci` failed: {result.stderr[-2000:]}")


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    # Draining stdout for the issuer's whole life also keeps its pipe from filling up.
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for_ready(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> int:
    """Return the port from the issuer's `READY <port>` line.

    :raises pytest.fail.Exception: the issuer exited or stayed silent too long.
    """
    while True:
        try:
            line = lines.get(timeout=READY_TIMEOUT_SECONDS)
        except queue.Empty:
            pytest.fail(f"the Better Auth issuer printed no READY in {READY_TIMEOUT_SECONDS} s")
        if line is None:
            pytest.fail(f"the Better Auth issuer exited with {process.wait(STOP_TIMEOUT_SECONDS)}")
        if line.startswith("READY "):
            return int(line.split()[1])


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def better_auth_issuer() -> Iterator[BetterAuthIssuer]:
    """A fresh Better Auth issuer (memory adapter, JWT plugin, EdDSA keys) on 127.0.0.1."""
    node = node_executable()
    install_node_modules(INTEROP_DIR)
    # stderr goes to the terminal: a crash explains itself without a pipe that could fill up.
    process = subprocess.Popen([node, "issuer.mjs", "0"], cwd=INTEROP_DIR, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        port = _wait_for_ready(process, lines)
        yield BetterAuthIssuer(base_url=f"http://127.0.0.1:{port}")
    finally:
        _stop(process)
        reader.join(timeout=STOP_TIMEOUT_SECONDS)
        process.stdout.close()


@pytest.fixture(scope="session")
def typescript_client() -> Path:
    """`clients/typescript`, with the tools its package-lock.json pins installed."""
    node_executable()
    install_node_modules(TYPESCRIPT_CLIENT_DIR)
    return TYPESCRIPT_CLIENT_DIR


@pytest.fixture(scope="session")
def served_openapi_document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with the OpenAPI document the server serves (what `todo openapi` prints)."""
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(openapi_document(settings_for("sqlite+aiosqlite:///:memory:")))
    return path


def run_tool(client: Path, tool: str, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Run one of the client's npm tools (`node_modules/.bin`) in its directory, with its output."""
    return subprocess.run(
        [client / "node_modules" / ".bin" / tool, *arguments],
        cwd=client,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
