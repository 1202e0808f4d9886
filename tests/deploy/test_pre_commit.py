"""The pre-commit hooks run what `make lint` runs, with the project's own tools (nothing downloaded)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".pre-commit-config.yaml"


def lint_recipe() -> list[str]:
    """The commands of the Makefile's `lint` target, with $(BIN) as .venv/bin."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, "the Makefile has no lint target"
    return [line.strip().replace("$(BIN)", ".venv/bin") for line in match[1].splitlines()]


def test_the_hooks_are_the_commands_of_make_lint_in_order() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert [hook["entry"] for hook in hooks] == lint_recipe()
    for hook in hooks:
        assert hook["language"] == "system" and hook["pass_filenames"] is False and hook["always_run"] is True


def test_pre_commit_accepts_the_configuration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
