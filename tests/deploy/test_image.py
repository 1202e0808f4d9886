"""The Dockerfile. No container engine runs in CI: its HEALTHCHECK command runs here against a real
`todo serve`, and the rest is read: what the build context lets in, the user, the entrypoint."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.test_persistence import deployed

ROOT = Path(__file__).resolve().parents[2]
HEALTHCHECK_SECONDS = 15.0


def dockerfile() -> str:
    # Continuation lines joined, so that each instruction is one line.
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in dockerfile().splitlines() if line.startswith(f"{name} ")]


def final_stage() -> str:
    return dockerfile().rsplit("\nFROM ", 1)[1]


def healthcheck_command() -> list[str]:
    (healthcheck,) = instructions("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.split(" CMD ", 1)[1])
    return command


def run_healthcheck(port: int) -> int:
    program, *arguments = healthcheck_command()
    assert program == "python", "the slim image has Python, not curl"
    result = subprocess.run(
        [sys.executable, *arguments], env={"TODO_PORT": str(port)}, timeout=HEALTHCHECK_SECONDS, check=False
    )
    return result.returncode


@pytest.mark.slow
def test_the_healthcheck_passes_while_the_server_answers_and_fails_once_it_is_gone(tmp_path: Path) -> None:
    deployment = deployed(f"sqlite+aiosqlite:///{tmp_path}/todo.db", tmp_path)
    server = deployment.start(1)
    try:
        server.wait_until_healthy()
        port = int(server.base_url.rsplit(":", 1)[1])
        assert run_healthcheck(port) == 0
    finally:
        server.stop()
    assert run_healthcheck(port) != 0


def test_the_image_serves_on_every_interface_as_an_unprivileged_user() -> None:
    stage = final_stage()
    assert re.search(r"^ENV .*\bTODO_HOST=0\.0\.0\.0\b", stage, re.MULTILINE)
    (user,) = [line.split()[1] for line in stage.splitlines() if line.startswith("USER ")]
    assert user.split(":")[0] not in {"root", "0"}
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["todo"]
    assert json.loads(instructions("CMD")[-1]) == ["serve"]


def test_dependencies_are_installed_only_from_the_lock_and_only_as_wheels() -> None:
    installs = [run for run in instructions("RUN") if "pip install" in run]
    assert installs
    for run in installs:
        assert "--no-deps" in run or (
            "--require-hashes" in run and "-r requirements/runtime.txt" in run and "--only-binary=:all:" in run
        ), run


def test_the_final_image_has_no_build_tools() -> None:
    stage = final_stage()
    assert "apt-get install" not in stage and "pip install" not in stage
    # The build backend the project was installed with is removed from the copied environment.
    assert any("pip uninstall --yes setuptools" in run for run in instructions("RUN"))


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context: the last matching line wins, a
    directory's line covers what is under it, and `**/` matches any depth, the top included. (fnmatch's
    `*` also crosses `/`, which makes this stricter than Docker, never laxer, for the lines used here.)"""
    prefixes = [str(Path(*Path(path).parts[: index + 1])) for index in range(len(Path(path).parts))]
    verdict = False
    for line in patterns:
        pattern = line.removeprefix("!").rstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatch(prefix, candidate) for prefix in prefixes for candidate in candidates):
            verdict = not line.startswith("!")
    return verdict


LOCAL_STATE = (".env", ".venv/bin/python", "todo.db", ".git/HEAD", "tests/conftest.py", "todo_api/__pycache__/a.pyc")


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_local_state() -> None:
    patterns = dockerignore()
    copied = [source for copy in instructions("COPY") if not copy.startswith("--from=") for source in copy.split()[:-1]]
    assert copied
    for source in copied:
        for path in [source, *(str(file.relative_to(ROOT)) for file in (ROOT / source).rglob("*.py"))]:
            if "__pycache__" not in path:
                assert not ignored(path, patterns), f"the Dockerfile copies {path}, but .dockerignore leaves it out"
    for local in LOCAL_STATE:
        assert ignored(local, patterns), f"{local} would be sent to the build"
