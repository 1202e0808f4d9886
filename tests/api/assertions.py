"""Assertions shared by the API tests."""

from __future__ import annotations

import httpx


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def field_errors(response: httpx.Response) -> set[str]:
    body = problem(response, 422)
    return {error["field"] for error in body["errors"]}  # type: ignore[attr-defined, index]
