"""Bad settings refuse to start: before anything binds or connects, one line per problem on
stderr naming the setting's variable and what is wrong, exit status 2, no traceback; the same
for every command that reads settings. `todo openapi` reads none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.ports import free_port
from todo_api.cli import main

#: A setting gone wrong → the variable its one line must name.
BROKEN: list[tuple[dict[str, str], str]] = [
    ({"TODO_JWT_SECRET": "short"}, "TODO_JWT_SECRET"),
    ({"TODO_JWT_SECRET": ""}, "TODO_JWT_SECRET"),
    ({"TODO_DEV_MODE": "1", "TODO_CURSOR_SECRET": ""}, "TODO_CURSOR_SECRET"),
    ({"TODO_DEV_MODE": "1", "TODO_CORS_ORIGINS": '["http://a.example"'}, "TODO_CORS_ORIGINS"),
    ({"TODO_DEV_MODE": "1", "TODO_LOG_LEVEL": "verbose"}, "TODO_LOG_LEVEL"),
    ({"TODO_DEV_MODE": "1", "TODO_LOG_FORMAT": "xml"}, "TODO_LOG_FORMAT"),
    ({"TODO_DEV_MODE": "1", "TODO_DATABASE_URL": "mysql://app:hunter2@db.example/todo"}, "TODO_DATABASE_URL"),
    ({"TODO_DEV_MODE": "1", "TODO_DATABASE_URL": "not a url at all"}, "TODO_DATABASE_URL"),
    ({"TODO_DEV_MODE": "1", "TODO_LISTEN_DATABASE_URL": "redis://cache"}, "TODO_LISTEN_DATABASE_URL"),
    ({"TODO_DEV_MODE": "1", "TODO_DATABASE_POOLER": "session"}, "TODO_DATABASE_POOLER"),
    ({"TODO_DEV_MODE": "1", "TODO_PORT": "70000"}, "TODO_PORT"),
    ({"TODO_DEV_MODE": "1", "TODO_WORKERS": "0"}, "TODO_WORKERS"),
    ({"TODO_DEV_MODE": "1", "TODO_DB_POOL_SIZE": "many"}, "TODO_DB_POOL_SIZE"),
    ({"TODO_DEV_MODE": "1", "TODO_DB_TIMEOUT_SECONDS": "-1"}, "TODO_DB_TIMEOUT_SECONDS"),
    ({"TODO_DEV_MODE": "1", "TODO_MAX_BODY_BYTES": "10"}, "TODO_MAX_BODY_BYTES"),
    ({"TODO_DEV_MODE": "1", "TODO_JWKS_URL": "auth.example/jwks"}, "TODO_JWKS_URL"),
    ({"TODO_DEV_MODE": "1", "TODO_PUBLIC_URL": "ftp://todo.example"}, "TODO_PUBLIC_URL"),
    ({"TODO_DEV_MODE": "maybe"}, "TODO_DEV_MODE"),
    ({}, "TODO_JWKS_URL"),  # nothing to verify tokens with
    ({"TODO_JWT_SECRET": "development-only-secret-not-for-production-use"}, "TODO_JWT_SECRET"),
]
COMMANDS = [["serve"], ["migrate"], ["token", "someone"]]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No TODO_ variable set and no `.env` file: each test sets what it means. A server that
    would start fails the test instead of running."""
    for name in list(os.environ):
        if name.startswith("TODO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def started(*_: Any, **__: Any) -> None:
        raise AssertionError("the server started with settings it should have refused")

    monkeypatch.setattr(uvicorn, "run", started)
    return monkeypatch


@pytest.mark.parametrize("command", COMMANDS, ids=lambda argv: argv[0])
@pytest.mark.parametrize(("variables", "named"), BROKEN, ids=[f"{named}-{n}" for n, (_, named) in enumerate(BROKEN)])
def test_a_bad_setting_is_one_line_naming_it_and_exit_status_2(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    variables: dict[str, str],
    named: str,
) -> None:
    for name, given in variables.items():
        environment.setenv(name, given)

    status = main(command)

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"todo: {named}")
    for secret in ("hunter2", "short", "development-only"):  # secrets and passwords are never repeated
        assert secret not in line


def test_every_bad_setting_gets_its_own_line(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("TODO_DEV_MODE", "1")
    environment.setenv("TODO_PORT", "-1")
    environment.setenv("TODO_LOG_LEVEL", "loud")

    assert main(["serve"]) == 2

    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["TODO_PORT", "TODO_LOG_LEVEL"]


def test_the_log_level_may_be_written_in_any_case(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("TODO_JWT_SECRET", "a-secret-that-is-long-enough-for-hs256-signing")
    environment.setenv("TODO_LOG_LEVEL", "debug")

    assert main(["token", "someone"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT


@pytest.mark.parametrize(
    "variables",
    [{}, {"TODO_JWT_SECRET": "short", "TODO_PORT": "x", "TODO_DATABASE_URL": "mysql://h/d"}],
    ids=["no-settings", "broken-settings"],
)
def test_todo_openapi_needs_no_settings(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: dict[str, str]
) -> None:
    for name, given in variables.items():
        environment.setenv(name, given)

    assert main(["openapi"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["info"]["title"] == "todo"
    assert "/api/{user_id}/tasks" in document["paths"]


def _todo(arguments: list[str], variables: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m todo_api …` in a process of its own, with only these TODO_ variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TODO_")}
    return subprocess.run(
        [sys.executable, "-m", "todo_api", *arguments],
        env={**env, **variables},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("arguments", "variables", "named"),
    [
        (["serve"], {"TODO_JWT_SECRET": "short"}, "TODO_JWT_SECRET"),
        (
            ["migrate"],
            {"TODO_DEV_MODE": "1", "TODO_DATABASE_URL": "mysql://app:hunter2@db.example/todo"},
            "TODO_DATABASE_URL",
        ),
        (["token", "someone"], {"TODO_JWT_SECRET": "short"}, "TODO_JWT_SECRET"),
    ],
    ids=["serve", "migrate", "token"],
)
def test_the_command_refuses_to_start_before_binding(
    tmp_path: Path, unused_port: int, arguments: list[str], variables: dict[str, str], named: str
) -> None:
    ran = _todo(arguments, {**variables, "TODO_PORT": str(unused_port)}, tmp_path)

    assert ran.returncode == 2, ran.stderr
    assert ran.stdout == ""
    (line,) = ran.stderr.splitlines()
    assert line.startswith(f"todo: {named}: ")
    assert "Traceback" not in ran.stderr


@pytest.fixture
def unused_port() -> int:
    return free_port()


def test_todo_openapi_runs_with_no_environment_at_all(tmp_path: Path) -> None:
    ran = _todo(["openapi"], {"TODO_JWT_SECRET": "short", "TODO_PORT": "x"}, tmp_path)

    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["openapi"].startswith("3.")
