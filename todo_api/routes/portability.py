"""Routes that take all of a user's data out as one JSON document, and put a document in."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from todo_api.dependencies import (
    CurrentClock,
    CurrentSettings,
    Exports,
    Reader,
    RunningExportsOfProcess,
    Uow,
    UserId,
)
from todo_api.exports import SpooledDocument, spooled
from todo_api.idempotency import Idempotent
from todo_api.problems import problem_responses, unsupported_media_type
from todo_api.representation import json_bytes, json_response
from todo_api.routing import ApiRoute
from todo_api.schemas.portability import AccountDocument, ExportedTask, ImportResult
from todo_core.category import CategoryFields
from todo_core.clock import Clock
from todo_core.portability import (
    FORMAT,
    VERSION,
    Imported,
    PortableCategory,
    PortableTask,
    category_record,
    task_record,
)
from todo_core.portability import AccountDocument as Document
from todo_core.ports import ExportReader
from todo_core.task import TaskFields
from todo_core.use_cases import portability as use_cases
from todo_core.user_settings import UserSettings

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}",
    tags=["portability"],
    responses=problem_responses(400, 401, 403, 422, 503),
)

#: The fields of a task in a document that are what a user writes on it (`TaskFields`).
_TASK_FIELDS = {field.name for field in dataclasses.fields(TaskFields)}


@router.get("/export", response_model=AccountDocument, responses=problem_responses(429))
async def export_account(
    user_id: UserId, reader: Exports, running: RunningExportsOfProcess, clock: CurrentClock
) -> Response:
    """Everything of the user's as one JSON document (`format` `todo-export`, `version` 1):
    settings, categories, and tasks with their steps, order, categories and repeat rules.
    `POST /import` takes it back, into this account or another. Read from one snapshot of the
    account, then sent at the client's pace, with a `Content-Length`. One export of an account
    at a time, across every server process: another is a 429 with `Retry-After`."""
    async with contextlib.AsyncExitStack() as slot:
        await slot.enter_async_context(running.claim(user_id))
        spool = await spooled(_document(reader, clock, user_id))
        return SpooledDocument(spool, slot.pop_all(), running.send_seconds)


async def _document(reader: ExportReader, clock: Clock, user_id: str) -> AsyncIterator[bytes]:
    """The document's JSON in parts: each part one page of tasks (orjson per page), so the
    whole is never held in memory."""
    async with use_cases.export_account(reader, user_id) as export:
        start: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": clock.now(),
            "settings": dataclasses.asdict(export.settings),
            "categories": [category_record(category) for category in export.categories],
        }
        yield json_bytes(start)[:-1] + b',"tasks":['
        separator = b""
        async for page in export.task_pages:
            yield separator + b",".join(json_bytes(task_record(task)) for task in page)
            separator = b","
        yield b"]}"


@router.post(
    "/import",
    response_model=ImportResult,
    status_code=201,
    responses=problem_responses(409, 413, 415),
    # The body is read as bytes and parsed in a worker thread (see `_parsed`), not by FastAPI
    # on the event loop: the schema is declared here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccountDocument"}}},
        }
    },
)
async def import_account(
    request: Request,
    user_id: UserId,
    uow: Uow,
    reader: Reader,
    clock: CurrentClock,
    idempotency: Idempotent,
    settings: CurrentSettings,
) -> Response:
    """Add a document of `GET /export` (this user's or another's) to the account, all or
    nothing: new ids, the tasks' structure, order and categories kept, the top-level tasks
    after the user's own. A category named as one of the user's is merged into it. A document
    that breaks a rule is a 422 naming where (`tasks[17].title`), and nothing is imported. With
    an `Idempotency-Key`, a retry imports nothing more."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return unsupported_media_type(("application/json",))
    # A large document costs seconds of CPU to parse and check: in a worker thread, the event
    # loop goes on serving the other requests meanwhile.
    document = await asyncio.to_thread(_parsed, await request.body())

    def answer(imported: Imported) -> Response:
        ids = {
            "categories": {str(old): new for old, new in imported.category_ids.items()},
            "tasks": {str(old): new for old, new in imported.task_ids.items()},
        }
        result = {
            "categories": imported.categories,
            "merged_categories": imported.merged_categories,
            "tasks": imported.tasks,
            "ids": ids,
        }
        return json_response(result, status_code=201)

    # The document's check costs seconds of CPU for a large one: in a worker thread too, and
    # before the unit of work (see `prepare_import`).
    prepared = await use_cases.prepare_import(reader, user_id, document, offload=asyncio.to_thread)
    imported = use_cases.import_account
    return await idempotency.run(
        uow, user_id, answer, imported, clock, user_id, prepared, at_most=settings.max_tasks, offload=asyncio.to_thread
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _parsed(body: bytes) -> Document:
    """The domain's document from the request's body, as FastAPI would have parsed it.

    :raises RequestValidationError: the body is not JSON, or not of the document's shape.
    """
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list):
        return _portable(_validated(AccountDocument, body, ("body",)))  # it fails, or it is small
    # pydantic validates a whole document without letting go of the GIL (seconds for tens of
    # thousands of tasks), and so without letting the event loop run: one task at a time, it
    # can switch between them.
    tasks: list[ExportedTask] = []
    problems: list[Any] = []
    for index, task in enumerate(raw["tasks"]):
        if index % use_cases.GIL_TURN_EVERY == 0:
            time.sleep(0)  # in a worker thread: the event loop's thread gets the GIL (see GIL_TURN_EVERY)
        try:
            tasks.append(_validated(ExportedTask, orjson.dumps(task), ("body", "tasks", index)))
        except RequestValidationError as error:
            problems.extend(error.errors())
    try:
        wire = _validated(AccountDocument, orjson.dumps({**raw, "tasks": []}), ("body",))
    except RequestValidationError as error:
        problems[:0] = error.errors()
    if problems:
        raise RequestValidationError(problems)
    return _portable(wire.model_copy(update={"tasks": tasks}))


def _validated(model: type[_Model], body: bytes, location: tuple[str | int, ...]) -> _Model:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        located = [{**problem, "loc": (*location, *problem["loc"])} for problem in error.errors()]
        raise RequestValidationError(located) from error


def _portable(body: AccountDocument) -> Document:
    """The domain's document from the wire's."""
    categories = [
        PortableCategory(category.id, CategoryFields(category.name, category.color), category.created_at)
        for category in body.categories
    ]
    tasks = [
        PortableTask(
            task.id,
            TaskFields.of(task.model_dump(include=_TASK_FIELDS)),
            completed_at=task.completed_at,
            created_at=task.created_at,
            next_occurrence_id=task.next_occurrence_id,
        )
        for task in body.tasks
    ]
    settings = UserSettings(**body.settings.model_dump()) if body.settings is not None else None
    return Document(categories, tasks, settings)
