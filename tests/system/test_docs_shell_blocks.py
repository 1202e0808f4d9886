"""The shell sessions of README.md and docs/*.md, pasted as a reader pastes them.

Every fenced block of those files says what it is: ```sh blocks are sessions to paste, and run
here; ```console blocks are shell commands that cannot run in a test (`make run` itself, Docker,
deployment), each preceded by a visible `<!-- not run: why -->` comment; any other language
(`text`, `json`, `ts`, …) is not shell. A block without a language, or in `bash`/`shell`/`zsh`,
fails the first test, so no session escapes the second by its spelling.

The second test starts `todo serve` in development mode on a SQLite file of its own and pastes
each document's `sh` blocks, in order, into an interactive bash and an interactive zsh (`zsh -f
-i`: no rc files, so `interactive_comments` is off, as in a fresh zsh; a `#` comment with an
apostrophe then opens a quote), twice in a row in the same shell, with `set -e -o pipefail`: a
step that fails (a curl with `--fail-with-body` that gets a 4xx, a Python traceback in a
pipeline) ends the paste before its end mark. The blocks name http://127.0.0.1:8000, `make
run`'s address; the test puts its server's in its place, and nothing else.

bash and zsh come from the system packages (`make test` installs zsh when missing). Without one
of them these tests skip, unless TODO_REQUIRE_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system.test_persistence import Server, clean_environment, dev_mode_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = "sh"
NOT_RUN = "console"
NOT_SHELL = {"text", "json", "ts", "python", "ini", "nginx", "yaml", "sql", "http"}
NOT_RUN_REASON = re.compile(r"^<!-- not run: \S.* -->$")
#: `make run`'s address, which the blocks use; the test's server takes its place.
MAKE_RUN_BASE = "http://127.0.0.1:8000"
PASTE_SECONDS = 180.0
SHELLS = {
    "bash": ["bash", "--norc", "--noprofile", "-i"],
    "zsh": ["zsh", "-f", "-i"],
}
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[^`\s]*)\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    text: str
    #: The `<!-- not run: … -->` line just before the block, if any.
    reason: str | None

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks_of(document: Path) -> list[Block]:
    lines = document.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = opening["indent"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            pytest.fail(f"{document.relative_to(ROOT)}:{index + 1}: a code block is never closed")
        before = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        text = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
        reason = before if NOT_RUN_REASON.match(before) else None
        found.append(Block(document, index + 1, opening["language"], text, reason))
        index = end + 1
    return found


def runnable(document: Path) -> list[Block]:
    return [block for block in blocks_of(document) if block.language == RUNNABLE]


def test_every_code_block_says_whether_it_runs() -> None:
    wrong = []
    for document in DOCUMENTS:
        for block in blocks_of(document):
            if block.language == RUNNABLE:
                if block.reason is not None:
                    wrong.append(f"{block.where}: a `sh` block runs; one that cannot is a `console` block")
                elsewhere = set(re.findall(r"https?://(?:127\.0\.0\.1|localhost)[:\d]*", block.text)) - {MAKE_RUN_BASE}
                if elsewhere:
                    wrong.append(f"{block.where}: a `sh` block may only call {MAKE_RUN_BASE}, not {sorted(elsewhere)}")
            elif block.language == NOT_RUN:
                if block.reason is None:
                    wrong.append(f"{block.where}: a `console` block needs `<!-- not run: why -->` just before it")
            elif block.language not in NOT_SHELL:
                wrong.append(
                    f"{block.where}: a block in {block.language or 'no language'!r}: "
                    f"`sh` to run it, `console` (with a reason) not to, or one of {sorted(NOT_SHELL)}"
                )
    assert wrong == []
    # The sessions the next test pastes are there to be pasted.
    assert len(runnable(ROOT / "README.md")) >= 2


def _pasted_documents() -> list[pytest.ParameterSet]:
    return [
        pytest.param(document, id=f"{document.relative_to(ROOT)}-{len(blocks)}-sh-blocks")
        for document in DOCUMENTS
        if (blocks := runnable(document))
    ]


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`make run`'s server: development mode, a SQLite file, here of the test's own."""
    with dev_mode_server(tmp_path_factory.mktemp("paste")) as running:
        yield running


def shell_command(name: str) -> list[str]:
    if shutil.which(name) is None:
        reason = f"`{name}` is not on PATH (`apt-get install {name}`; `make test` does it when run as root)"
        if os.environ.get("TODO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the pasted sessions are required (TODO_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return SHELLS[name]


@pytest.mark.parametrize("shell", sorted(SHELLS))
@pytest.mark.parametrize("document", _pasted_documents())
def test_a_documents_shell_blocks_paste_twice_in_a_row(
    document: Path, shell: str, dev_server: Server, tmp_path: Path
) -> None:
    command = shell_command(shell)
    blocks = runnable(document)
    paste = "\n".join(block.text.replace(MAKE_RUN_BASE, dev_server.base_url) for block in blocks)
    end_mark = "END-OF-THE-PASTE"
    script = "set -e -o pipefail\n" + f"{paste}\necho {end_mark}\n" * 2
    # An environment without TODO_ settings, and a home of its own: nothing but the blocks counts.
    environment = clean_environment(HOME=str(tmp_path), PS1="", PROMPT="", PROMPT_EOL_MARK="")
    try:
        result = subprocess.run(
            command,
            input=script.encode(),
            cwd=ROOT,
            env=environment,
            capture_output=True,
            timeout=PASTE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pasting {document.name} into {shell} took longer than {PASTE_SECONDS} s")
    output = result.stdout.decode(errors="replace")
    errors = result.stderr.decode(errors="replace")
    pastes_done = output.count(end_mark)
    assert (result.returncode, pastes_done) == (0, 2), (
        f"{len(blocks)} sh blocks of {document.name} pasted twice into {shell}: exit status "
        f"{result.returncode}, {pastes_done} pastes done\n--- stdout\n{output[-4000:]}\n--- stderr\n{errors[-4000:]}"
    )
    assert "Traceback" not in output + errors
