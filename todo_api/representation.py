"""Entities to JSON, serialized once with orjson: the fast path that skips response models.

The shapes here are the ones `schemas.py` documents; the API tests compare the two.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import Response

from todo_core.category import Category
from todo_core.task import Task

_STRONG_ETAG = re.compile(r'"([0-9]{1,9})"', re.ASCII)


def task_json(task: Task) -> dict[str, Any]:
    fields = task.fields
    return {
        "id": task.id,
        "title": fields.title,
        "description": fields.description,
        "completed": fields.completed,
        "completed_at": task.completed_at,
        "priority": fields.priority.label,
        "due_at": fields.due_at,
        "remind_at": fields.remind_at,
        "recurrence": fields.recurrence,
        "tags": fields.tags,
        "category_id": fields.category_id,
        "next_occurrence_id": task.next_occurrence_id,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "version": task.version,
    }


def category_json(category: Category) -> dict[str, Any]:
    return {
        "id": category.id,
        "name": category.fields.name,
        "color": category.fields.color,
        "created_at": category.created_at,
        "updated_at": category.updated_at,
        "version": category.version,
    }


def etag(version: int) -> str:
    return f'"{version}"'


def json_response(body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


def versioned_response(
    body: dict[str, Any], version: int, *, status_code: int = 200, headers: dict[str, str] | None = None
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
    listed = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in listed or etag(version) in listed
