"""`todo openapi` prints the document the server serves, for tools that generate clients from it."""

from __future__ import annotations

import json

import httpx
import pytest

from todo_api.cli import main


async def test_todo_openapi_prints_the_document_the_server_serves(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TODO_DEV_MODE", "1")

    assert main(["openapi"]) == 0

    served = await client.get("/openapi.json")
    assert json.loads(capsys.readouterr().out) == served.json()
