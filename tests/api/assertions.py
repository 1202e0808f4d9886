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


def next_page(response: httpx.Response) -> str | None:
    """The absolute URL of the next page, as the `Link: <…>; rel="next"` header names it (read by
    httpx's own `Link` parser); None on the last page."""
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)
    link = response.links.get("next")
    return None if link is None else link["url"]


def next_cursor(response: httpx.Response) -> str | None:
    """The `cursor` of the next page's URL; None on the last page."""
    url = next_page(response)
    return None if url is None else httpx.URL(url).params["cursor"]
