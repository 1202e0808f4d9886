"""A real Better Auth JWT issuer (Node, `issuer.mjs`) for tests that need genuine tokens."""

from __future__ import annotations

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

INTEROP_DIR = Path(__file__).parent
NPM_CI_TIMEOUT_SECONDS = 300
READY_TIMEOUT_SECONDS = 30
MINT_TIMEOUT_SECONDS = 10
STOP_TIMEOUT_SECONDS = 5


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
        pytest.fail(f"Better Auth interop required but unavailable: {reason}")
    pytest.skip(f"Better Auth interop unavailable: {reason} (set TODO_REQUIRE_INTEROP=1 to fail)")


def _install_node_modules() -> None:
    if (INTEROP_DIR / "node_modules" / "better-auth").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("`npm` is not on PATH")
    try:
        result = subprocess.run(
            [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
            cwd=INTEROP_DIR,
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
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH")
    _install_node_modules()
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
