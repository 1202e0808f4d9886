"""The OpenAPI document the server serves passes Redocly's lint (the rules in
`clients/typescript/redocly.yaml`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.conftest import run_tool

pytestmark = pytest.mark.slow  # runs a Node tool


def test_the_served_document_passes_redocly_lint(typescript_client: Path, served_openapi_document: Path) -> None:
    result = run_tool(typescript_client, "redocly", "lint", served_openapi_document, "--format", "stylish")

    assert result.returncode == 0, result.stdout + result.stderr
