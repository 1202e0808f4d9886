"""Routes under /api/{user_id}/tasks, plus the user's tags and due reminders."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request, Response

from todo_api.dependencies import CurrentClock, CurrentSettings, Cursors, Reader, Uow, UserId, Views
from todo_api.idempotency import Idempotent
from todo_api.problems import problem_responses
from todo_api.representation import (
    etag,
    etag_listed,
    if_match_version,
    json_response,
    location,
    next_page_link,
    versioned_response,
)
from todo_api.routing import ApiRoute
from todo_api.schemas.common import Rfc3339
from todo_api.schemas.tasks import (
    CompletionWrite,
    MoveWrite,
    TagCount,
    TaskListParams,
    TaskPatch,
    TaskRead,
    TaskWrite,
)
from todo_core.commands import run
from todo_core.task import Task, TaskFields
from todo_core.use_cases import tasks as use_cases
from todo_core.views import task_view

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}",
    tags=["tasks"],
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The task\'s ETag, e.g. "3": the change applies only to that version'),
]


@router.get("/tasks", response_model=list[TaskRead])
async def list_tasks(
    request: Request,
    user_id: UserId,
    views: Views,
    cursors: Cursors,
    settings: CurrentSettings,
    params: Annotated[TaskListParams, Query()],
) -> Response:
    """List the user's tasks, filtered, searched and sorted, one page at a time: a JSON array,
    and while more follow, the next page's URL in `Link: <…>; rel="next"` (RFC 8288)."""
    query = params.task_query()
    if params.cursor:
        query = replace(query, after=cursors.decode(user_id, query, params.cursor))
    page = await use_cases.list_tasks(views, user_id, query)
    headers = None
    if page.next_after:
        cursor = cursors.encode(user_id, query, page.next_after)
        headers = {"Link": next_page_link(request, settings, location(user_id, "tasks"), cursor)}
    return json_response(page.items, headers=headers)


@router.post("/tasks", response_model=TaskRead, status_code=201, responses=problem_responses(409))
async def create_task(
    user_id: UserId,
    uow: Uow,
    clock: CurrentClock,
    body: TaskWrite,
    idempotency: Idempotent,
    settings: CurrentSettings,
) -> Response:
    """Create a task. With an `Idempotency-Key`, a retry creates nothing more."""
    fields = TaskFields.of(body.model_dump())

    def created(task: Task) -> Response:
        return _task_response(task, status_code=201, headers={"Location": location(user_id, "tasks", task.id)})

    create = use_cases.create_task
    return await idempotency.run(uow, user_id, created, create, clock, user_id, fields, at_most=settings.max_tasks)


@router.get(
    "/tasks/{task_id}",
    response_model=TaskRead,
    responses={304: {"description": "Not modified"}, **problem_responses(404)},
)
async def get_task(
    user_id: UserId,
    views: Views,
    task_id: UUID,
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", description="An ETag you hold: 304 if it is still current")
    ] = None,
) -> Response:
    """Read one task. With `If-None-Match` set to its current ETag, the answer is 304."""
    found = await use_cases.get_task(views, user_id, task_id)
    if if_none_match and etag_listed(if_none_match, found.version):
        return Response(status_code=304, headers={"ETag": etag(found.version)})
    return versioned_response(found.view, found.version)


@router.put("/tasks/{task_id}", response_model=TaskRead, responses=problem_responses(404, 412))
async def replace_task(
    user_id: UserId, uow: Uow, clock: CurrentClock, task_id: UUID, body: TaskWrite, if_match: IfMatch = None
) -> Response:
    """Replace every writable field of a task (an absent optional field takes its default)."""
    fields = TaskFields.of(body.model_dump())
    task = await run(uow, use_cases.replace_task, clock, user_id, task_id, fields, if_match=if_match_version(if_match))
    return _task_response(task)


@router.patch("/tasks/{task_id}", response_model=TaskRead, responses=problem_responses(404, 412))
async def patch_task(
    user_id: UserId, uow: Uow, clock: CurrentClock, task_id: UUID, body: TaskPatch, if_match: IfMatch = None
) -> Response:
    """Change some fields of a task (JSON merge patch: absent is unchanged, null clears)."""
    changes = body.model_dump(exclude_unset=True)
    task = await run(uow, use_cases.patch_task, clock, user_id, task_id, changes, if_match=if_match_version(if_match))
    return _task_response(task)


@router.delete("/tasks/{task_id}", status_code=204, response_class=Response, responses=problem_responses(404, 412))
async def delete_task(
    user_id: UserId, uow: Uow, clock: CurrentClock, task_id: UUID, if_match: IfMatch = None
) -> Response:
    """Delete a task and its steps (and theirs), all at once."""
    await run(uow, use_cases.delete_task, clock, user_id, task_id, if_match=if_match_version(if_match))
    return Response(status_code=204)


@router.patch("/tasks/{task_id}/complete", response_model=TaskRead, responses=problem_responses(404, 412))
async def complete_task(
    user_id: UserId,
    uow: Uow,
    clock: CurrentClock,
    task_id: UUID,
    body: Annotated[CompletionWrite | None, Body()] = None,
    if_match: IfMatch = None,
) -> Response:
    """Set `completed` as given, or toggle it when the body has none (`{}`, or no body). Completing a task completes
    its open steps; completing a repeating task creates its next occurrence, named by
    `next_occurrence_id`, with fresh open copies of its steps. Re-opening leaves the steps as
    they are."""
    completed = body.completed if body is not None else None
    version = if_match_version(if_match)
    task = await run(uow, use_cases.complete_task, clock, user_id, task_id, completed, if_match=version)
    return _task_response(task)


@router.post("/tasks/{task_id}/move", response_model=TaskRead, responses=problem_responses(404, 412))
async def move_task(
    user_id: UserId, uow: Uow, clock: CurrentClock, task_id: UUID, body: MoveWrite, if_match: IfMatch = None
) -> Response:
    """Put a task right after a sibling (`after`), or first (`after` null), under a parent
    (`parent_id`; null: the top level; absent: where it is). Only the moved task changes: its
    `position` and, when it moves to another parent, its `parent_id`. Its steps move with it."""
    parent_id = body.parent_id if "parent_id" in body.model_fields_set else use_cases.KEEP_PARENT
    version = if_match_version(if_match)
    task = await run(
        uow, use_cases.move_task, clock, user_id, task_id, parent_id=parent_id, after=body.after, if_match=version
    )
    return _task_response(task)


@router.get("/tags", response_model=list[TagCount])
async def list_tags(user_id: UserId, uow: Reader) -> Response:
    """The user's tags, each with how many tasks carry it, most used first."""
    counts = await use_cases.tag_counts(uow, user_id)
    return json_response([{"tag": tag, "count": count} for tag, count in counts])


@router.get("/reminders", response_model=list[TaskRead])
async def list_due_reminders(
    user_id: UserId,
    uow: Reader,
    clock: CurrentClock,
    until: Annotated[Rfc3339 | None, Query(description="Reminders due by this instant; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=use_cases.REMINDERS_MAX)] = use_cases.REMINDERS_MAX,
) -> Response:
    """Open tasks whose reminder is due, soonest first: what a front end polls to notify."""
    tasks = await use_cases.due_reminders(uow, clock, user_id, until, limit)
    return json_response([task_view(task) for task in tasks])


def _task_response(task: Task, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return versioned_response(task_view(task), task.version, status_code=status_code, headers=headers)
