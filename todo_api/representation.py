"""Responses serialized once with orjson: the fast path that skips response models.

A task's shape is its view (`todo_core.views`), derived from the entity; `schemas/tasks.py`
documents it, and the API tests compare real responses with those documented schemas.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson
from fastapi import Request, Response
from starlette.types import Scope

from todo_api.settings import Settings
from todo_core.views import instant_text

_STRONG_ETAG = re.compile(r'"([0-9]{1,9})"', re.ASCII)


def location(user_id: str, *parts: object) -> str:
    """The path of a user's resource, percent-encoded: a header holds Latin-1 only, and a user
    id may hold any character (its 201 must not fail after the commit)."""
    return "/".join(["/api", quote(user_id, safe=""), *(quote(str(part), safe="") for part in parts)])


def public_base(request: Request, settings: Settings) -> str:
    """Where clients reach this service (see `public_base_of`)."""
    return public_base_of(request.scope, settings.public_url)


def public_base_of(scope: Scope, public_url: str | None) -> str:
    """Where clients reach this service: `TODO_PUBLIC_URL` when set; otherwise the request's own
    scheme, `Host` and `root_path`: behind a proxy, the scheme it was asked with when the proxy is
    one of TODO_FORWARDED_ALLOW_IPS, and the `Host` it passes on (`$http_host` in nginx)."""
    if public_url:
        return public_url.rstrip("/")
    return str(Request(scope).base_url).rstrip("/")


def next_page_link(request: Request, settings: Settings, path: str, cursor: str) -> str:
    """A `Link` header's value (RFC 8288) naming the next page of a list at `path` (as
    `location` writes it): its absolute URL, with the request's own query (as the client
    encoded it) and that `cursor`, so that a client follows the link and nothing else."""
    query: bytes = request.scope.get("query_string", b"")
    # Escapes stay as sent; what a client left unescaped that a URL in `<…>` cannot hold (`<`,
    # `>`, a space, a non-ASCII byte) is escaped.
    parts = (quote(part, safe=_QUERY_SAFE, encoding="latin-1") for part in query.decode("latin-1").split("&"))
    kept = [part for part in parts if part and _name(part) != "cursor"]
    kept.append(f"cursor={quote(cursor, safe='')}")
    return f'<{public_base(request, settings)}{path}?{"&".join(kept)}>; rel="next"'


_QUERY_SAFE = "%=+!$'()*,;:@/?~"


def _name(parameter: str) -> str:
    return unquote_plus(parameter.partition("=")[0])


def etag(version: int) -> str:
    return f'"{version}"'


def json_bytes(body: Any) -> bytes:
    """The JSON of a response body; every instant written by `instant_text`."""
    return orjson.dumps(body, default=_instant, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, date):  # an all-day due date: YYYY-MM-DD, as the databases write it
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(body), status_code=status_code, media_type="application/json", headers=headers)


def versioned_response(
    body: object, version: int, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A resource's JSON with its version as the ETag."""
    return json_response(body, status_code=status_code, headers={"ETag": etag(version), **(headers or {})})


def if_match_version(header: str | None) -> int | None:
    """The version an `If-Match` header names: None when absent or `*` (any version will do),
    -1 (never current) when it names no version we issued. A weak tag (`W/"3"`) never matches
    `If-Match` (RFC 9110, 13.1.1)."""
    if header is None or header.strip() == "*":
        return None
    found = _STRONG_ETAG.fullmatch(header.strip())
    return int(found[1]) if found else -1


def etag_listed(if_none_match: str, version: int) -> bool:
    """Whether an `If-None-Match` header lists this version (or `*`)."""
    return tag_listed(if_none_match, etag(version))


def tag_listed(if_none_match: str, tag: str) -> bool:
    """Whether an `If-None-Match` header lists this entity tag (or `*`), compared weakly (RFC 9110, 13.1.2)."""
    listed = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in listed or tag in listed
