"""The TypeScript client in `clients/typescript` is typed from the document the server serves,
and a front end's use of it type-checks."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.interop.conftest import run_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("typescript")]  # runs Node tools (tsc)

REGENERATE = "make client"


def test_the_committed_types_are_generated_from_the_served_document(
    typescript_client: Path, served_openapi_document: Path, tmp_path: Path
) -> None:
    generated = tmp_path / "schema.d.ts"

    result = run_tool(typescript_client, "openapi-typescript", served_openapi_document, "-o", generated)

    assert result.returncode == 0, result.stdout + result.stderr
    committed = typescript_client / "src" / "schema.d.ts"
    diff = "".join(
        difflib.unified_diff(
            committed.read_text().splitlines(keepends=True),
            generated.read_text().splitlines(keepends=True),
            "clients/typescript/src/schema.d.ts (committed)",
            "generated from the served document",
        )
    )
    assert not diff, f"The TypeScript client's types are out of date: run `{REGENERATE}` and commit.\n{diff}"


def test_a_front_ends_use_of_the_client_type_checks(typescript_client: Path) -> None:
    # tsconfig.json: strict, no emit; src/ and examples/front-end.ts, whose `@ts-expect-error`
    # lines fail the check if the types stop refusing misuses.
    result = run_tool(typescript_client, "tsc", "-p", ".")

    assert result.returncode == 0, result.stdout + result.stderr
