"""What each problem type means (public): the `type` of every problem+json answer is a URL a
developer can open (RFC 9457, 3.1.1). HTML for browsers; JSON, or plain text, for the rest.

Not in the OpenAPI document: these pages explain the document's error responses, they are not
part of the API a client is generated from.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response

from todo_api.problem_types import PROBLEM_TYPES, ProblemType
from todo_api.representation import json_bytes
from todo_api.routing import ApiRoute
from todo_core.errors import NotFound

router = APIRouter(route_class=ApiRoute, include_in_schema=False)

Subject = TypeVar("Subject")

_JSON, _HTML, _TEXT = "application/json", "text/html", "text/plain"
_HEADERS = {
    "Vary": "Accept",
    "Cache-Control": "public, max-age=3600",
    # The HTML pages need nothing but their own inline style.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_PAGE = (
    '<!doctype html>\n<html lang="en"><meta charset="utf-8">'
    "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}"
    "td{padding:.2rem .6rem;vertical-align:top}</style>\n"
)


@router.get("/problems")
async def problem_types(request: Request) -> Response:
    """Every problem type the service answers with."""
    return _negotiated(request, list(PROBLEM_TYPES.values()), _json_list, _html_list, _text_list)


@router.get("/problems/{name}")
async def problem_type(name: str, request: Request) -> Response:
    """One problem type: what it means and what a client should do."""
    problem = PROBLEM_TYPES.get(name)
    if problem is None:
        raise NotFound("problem type")
    return _negotiated(request, problem, _json_one, _html_one, _text_one)


def _negotiated(
    request: Request,
    subject: Subject,
    as_json: Callable[[Subject], Any],
    as_html: Callable[[Subject, str], str],
    as_text: Callable[[Subject], str],
) -> Response:
    chosen = _preferred(request.headers.get("accept", "*/*"), (_JSON, _HTML, _TEXT))
    if chosen == _HTML:
        root = request.scope.get("root_path", "").rstrip("/")
        return Response(_PAGE + as_html(subject, root), media_type=_HTML, headers=_HEADERS)
    if chosen == _TEXT:
        return Response(as_text(subject), media_type=_TEXT, headers=_HEADERS)
    return Response(json_bytes(as_json(subject)), media_type=_JSON, headers=_HEADERS)


def _preferred(accept: str, offered: tuple[str, ...]) -> str:
    """The offered media type the `Accept` header ranks highest (RFC 9110, 12.5.1): by quality,
    then by how specifically a range names it, then in the order offered. The first offered when
    none is acceptable: an explanation beats a 406."""

    ranges = _ranges(accept)

    def rank(index: int) -> tuple[float, int, int]:
        # The most specific range that names the type sets its quality.
        quality, specificity = max(
            ((quality, _specificity(media_range, offered[index])) for media_range, quality in ranges),
            key=lambda ranked: ranked[1],
            default=(0.0, -1),
        )
        return (quality if specificity >= 0 else 0.0), specificity, -index

    chosen = max(range(len(offered)), key=rank)
    return offered[chosen] if rank(chosen)[0] > 0 else offered[0]


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_range, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        if media_range:
            ranges.append((media_range.lower(), quality))
    return ranges


def _specificity(media_range: str, media_type: str) -> int:
    """2 for `text/html` itself, 1 for `text/*`, 0 for `*/*`, -1 for no match."""
    if media_range == media_type:
        return 2
    if media_range == f"{media_type.split('/')[0]}/*":
        return 1
    return 0 if media_range == "*/*" else -1


def _json_one(problem: ProblemType) -> dict[str, Any]:
    return {
        "type": problem.uri,
        "name": problem.name,
        "status": problem.status,
        "title": HTTPStatus(problem.status).phrase,
        "meaning": problem.meaning,
        "remedy": problem.remedy,
    }


def _json_list(problems: list[ProblemType]) -> list[dict[str, Any]]:
    return [_json_one(problem) for problem in problems]


def _text_one(problem: ProblemType) -> str:
    return (
        f"{problem.name}: {problem.status} {HTTPStatus(problem.status).phrase}\n\n"
        f"What it means: {problem.meaning}\n\nWhat to do: {problem.remedy}\n"
    )


def _text_list(problems: list[ProblemType]) -> str:
    return "\n".join(f"{problem.uri}  {problem.status}  {problem.meaning}" for problem in problems) + "\n"


def _html_one(problem: ProblemType, root: str) -> str:
    heading = f"{problem.status} {HTTPStatus(problem.status).phrase}: {problem.name}"
    return (
        f"<title>{_escaped(heading)}</title>\n<h1>{_escaped(heading)}</h1>\n"
        f"<h2>What it means</h2>\n<p>{_escaped(problem.meaning)}</p>\n"
        f"<h2>What to do</h2>\n<p>{_escaped(problem.remedy)}</p>\n"
        f'<p><a href="{html.escape(root)}/problems">Every problem type</a> · '
        f'<a href="{html.escape(root)}/docs">The API</a></p>\n'
    )


def _html_list(problems: list[ProblemType], root: str) -> str:
    rows = "".join(
        f'<tr><td><a href="{html.escape(root + problem.uri)}">{_escaped(problem.name)}</a></td>'
        f"<td>{problem.status}</td><td>{_escaped(problem.meaning)}</td></tr>\n"
        for problem in problems
    )
    return (
        "<title>Problem types</title>\n<h1>Problem types</h1>\n"
        "<p>Every error is an <code>application/problem+json</code> document whose <code>type</code> "
        "is one of these.</p>\n"
        f"<table>\n{rows}</table>\n"
    )


_CODE = re.compile(r"`([^`]+)`")


def _escaped(text: str) -> str:
    """HTML-escaped text, with `code` in backquotes set as code."""
    return _CODE.sub(r"<code>\1</code>", html.escape(text))
