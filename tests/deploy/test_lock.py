"""The lock files in requirements/ say what pyproject.toml says: every package pinned there is locked
at that version (with the same extras), nothing is locked as the project's own that pyproject.toml
no longer asks for, and a package has one version in all three files. When one of these fails, run
`make lock`."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT_ANNOTATION = "todo (pyproject.toml)"
# Which extras each lock file installs on top of the project's own dependencies.
LOCKS = {"runtime.txt": (), "dev.txt": ("dev",), "bench.txt": ("dev", "bench")}
LOCKED_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)(?:\[(?P<extras>[^\]]*)\])?==(?P<version>\S+)"
    r"(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


@dataclass(frozen=True, slots=True)
class Locked:
    name: str
    extras: frozenset[str]
    version: str
    marker: str
    direct: bool
    hashes: int


def parse_lock(text: str) -> list[Locked]:
    """The packages of a lock file written by `uv pip compile --generate-hashes --annotation-style line`:
    each is a line `name[extras]==version ; marker \\`, then its indented hashes and `# via` line."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(" "):
            assert blocks, f"an indented line before any package: {line!r}"
            blocks[-1].append(line.strip())
        else:
            blocks.append([line])
    return [_locked(block) for block in blocks]


def _locked(block: list[str]) -> Locked:
    match = LOCKED_LINE.match(block[0])
    assert match, f"a line of the lock file this test cannot read: {block[0]!r}"
    return Locked(
        name=canonicalize_name(match["name"]),
        extras=frozenset(extra.strip() for extra in (match["extras"] or "").split(",") if extra.strip()),
        version=match["version"],
        marker=(match["marker"] or "").strip(),
        direct=any(line.startswith("# via") and PROJECT_ANNOTATION in line for line in block),
        hashes=sum(line.startswith("--hash=sha256:") for line in block),
    )


def pinned(extras: tuple[str, ...]) -> dict[str, Requirement]:
    """pyproject.toml's requirements for the project and the given extras, by package name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        requirements += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def build_requirements() -> list[Requirement]:
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    return [Requirement(text) for text in build_system["requires"]]


def exact_version(requirement: Requirement) -> str:
    specifiers = list(requirement.specifier)
    assert len(specifiers) == 1 and specifiers[0].operator == "==", (
        f"pyproject.toml pins every dependency exactly; {requirement} is not"
    )
    return specifiers[0].version


def read_lock(name: str) -> list[Locked]:
    path = ROOT / "requirements" / name
    assert path.exists(), f"requirements/{name} is missing: run `make lock`"
    return parse_lock(path.read_text())


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_every_pin_of_pyproject_is_locked_at_its_version(lock: str, extras: tuple[str, ...]) -> None:
    locked = {entry.name: entry for entry in read_lock(lock)}
    for name, requirement in pinned(extras).items():
        assert name in locked, f"{requirement} is in pyproject.toml but not in requirements/{lock}: run `make lock`"
        entry = locked[name]
        assert entry.version == exact_version(requirement), (
            f"pyproject.toml pins {requirement}, requirements/{lock} locks {entry.version}: run `make lock`"
        )
        assert requirement.extras <= entry.extras, (
            f"requirements/{lock} locks {name} without the extras {sorted(requirement.extras)}: run `make lock`"
        )


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_nothing_is_locked_for_the_project_that_pyproject_no_longer_asks_for(
    lock: str, extras: tuple[str, ...]
) -> None:
    direct = {entry.name for entry in read_lock(lock) if entry.direct}
    assert direct == set(pinned(extras)), f"requirements/{lock} disagrees with pyproject.toml: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_the_build_backend_is_locked_for_an_install_without_build_isolation(lock: str) -> None:
    locked = {entry.name: entry.version for entry in read_lock(lock)}
    for requirement in build_requirements():
        name = canonicalize_name(requirement.name)
        assert locked.get(name) == exact_version(requirement), (
            f"[build-system] requires {requirement}; requirements/{lock} has {locked.get(name)}: run `make lock`"
        )


def test_a_package_has_one_version_in_every_lock_file() -> None:
    versions: dict[tuple[str, str], dict[str, str]] = {}
    for lock in LOCKS:
        for entry in read_lock(lock):
            versions.setdefault((entry.name, entry.marker), {})[lock] = entry.version
    differing = {key: by_lock for key, by_lock in versions.items() if len(set(by_lock.values())) > 1}
    assert not differing, f"locked at different versions: {differing}; run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_carries_its_hashes(lock: str) -> None:
    entries = read_lock(lock)
    assert entries, f"requirements/{lock} locks nothing"
    assert [entry.name for entry in entries if entry.hashes == 0] == []


def test_the_reader_sees_extras_markers_and_which_packages_the_project_asks_for() -> None:
    text = (
        "uvicorn[standard]==0.54.0 ; sys_platform != 'win32' \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via -c requirements/bench.txt, todo (pyproject.toml)\n"
        "h11==0.16.0 \\\n"
        "    --hash=sha256:cc\n"
        "    # via uvicorn\n"
    )
    assert parse_lock(text) == [
        Locked("uvicorn", frozenset({"standard"}), "0.54.0", "sys_platform != 'win32'", direct=True, hashes=2),
        Locked("h11", frozenset(), "0.16.0", "", direct=False, hashes=1),
    ]
