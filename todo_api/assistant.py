"""The MCP server for AI assistants: the same use cases as the REST API, as MCP tools.

A second driving adapter. Every tool acts for one user — the subject of the bearer token that
`Authentication` verified for the HTTP request to /mcp, or the user of `TODO_TOKEN` for
`todo mcp` on stdio — and calls the use cases the routes call, with the same pydantic models
reading its arguments, so ownership, validation, idempotency, the outbox and the change feed are
the REST API's own. The Phase III tools (`add_task`, `list_tasks`, `complete_task`,
`delete_task`, `update_task`, each with `user_id`) keep their names and arguments; the other
arguments and tools are what an assistant needs to be useful.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, ParamSpec, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from todo_adapters.auth import JwksKeys
from todo_api.batch_operations import operations_of
from todo_api.container import Container
from todo_api.middleware import MCP_PATH
from todo_api.problems import field_errors
from todo_api.schemas.assistant import (
    AssistantBatchOperation,
    BatchItem,
    BatchOperationsArg,
    BatchResult,
    CategoryListResult,
    CategoryView,
    IdempotencyKeyArg,
    Overview,
    OverviewSection,
    TaskIdArg,
    TaskListResult,
    TaskResult,
    TaskView,
    UserIdArg,
)
from todo_api.schemas.categories import CategoryWrite
from todo_api.schemas.tasks import MoveWrite, TaskListParams, TaskPatch, TaskWrite
from todo_core.category import CategoryFields
from todo_core.commands import Command, Unchanged, run, run_once
from todo_core.errors import (
    BatchOperationFailed,
    Conflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
    StorageUnavailable,
    ValidationFailed,
)
from todo_core.idempotency import Answer, IdempotencyKey
from todo_core.identity import Identity
from todo_core.ports import UnitOfWork
from todo_core.query import LIMIT_MAX, Sort, SortField, Status, TaskQuery
from todo_core.task import Task, TaskFields
from todo_core.use_cases import batch as batch_use_cases
from todo_core.use_cases import categories as category_use_cases
from todo_core.use_cases import tasks as task_use_cases
from todo_core.use_cases.settings import get_settings
from todo_core.views import category_view, task_view

INSTRUCTIONS = (
    "Manage one user's to-do list. Every tool takes `user_id`: pass the id of the signed-in user "
    "this connection acts for (any other id is refused). Start with `get_overview` to see what is "
    "overdue, due today and due this week; use `list_tasks` to search and filter; `add_task`, "
    "`update_task`, `complete_task`, `move_task` and `delete_task` change one task; `batch_tasks` "
    "applies several changes all together or not at all. Task ids are UUIDs that tools return."
)

Model = TypeVar("Model", bound=BaseModel)
Result = TypeVar("Result")
T = TypeVar("T")
P = ParamSpec("P")

#: Who a tool call acts for, read from the call's context (None: nobody vouched for it).
ActingUser = Callable[[Context], str | None]


def build_server(container: Container, acting_user: ActingUser) -> MCPServer:
    """The MCP server with every tool, on the container's use cases, acting for `acting_user`."""
    # The SDK's constructor configures the root logger (`logging.basicConfig`) when nothing has:
    # the service's logging is its own (todo_api/logs.py), so put the root logger back as it was.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer("todo", title="todo", instructions=INSTRUCTIONS, version="1.0.0")
    root.handlers[:] = handlers
    root.setLevel(level)
    tools = _Tools(container, acting_user)
    for tool in tools.all():
        server.add_tool(tool.fn, name=tool.name, description=tool.description, annotations=tool.annotations)
    return server


def streamable_http_app(server: MCPServer, max_body_bytes: int) -> StreamableHTTPASGIApp:
    """The ASGI app of /mcp: stateless, JSON answers (every tool answers at once; no sessions to
    keep across replicas). The bearer token guards it, not the Origin: a browser never sends a
    token of its own accord, so DNS rebinding gains a page nothing."""
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=max_body_bytes,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return StreamableHTTPASGIApp(server.session_manager)


def http_acting_user(context: Context) -> str | None:
    """The user `Authentication` verified for the HTTP request that carried the call."""
    request = context.request_context.request
    state = getattr(request, "scope", {}).get("state", {})
    user_id = state.get("user_id")
    return user_id if isinstance(user_id, str) else None


class TokenExpired(ToolError):
    """The token `todo mcp` was started with is no longer accepted."""


def token_acting_user(identity: Identity) -> ActingUser:
    """For `todo mcp`: the user of the token it was started with, while the token is accepted."""

    def acting_user(_: Context) -> str | None:
        if time.time() >= identity.valid_until:
            raise TokenExpired("the token in TODO_TOKEN has expired: start `todo mcp` again with a fresh one")
        return identity.user_id

    return acting_user


async def serve_stdio(container: Container, token: str) -> None:
    """`todo mcp`: the tools on stdin and stdout, for the user of `token` (verified as the HTTP
    API verifies it).

    :raises AuthenticationFailed: the token is not accepted.
    """
    try:
        identity = await container.identity_verifier().identify(token)
        await build_server(container, token_acting_user(identity)).run_stdio_async()
    finally:
        await release(container)


async def release(container: Container) -> None:
    """Close what the container's singletons opened (pool or engine, the key server's client)."""
    if container.backend() == "postgresql":
        await container.postgres_pool().close()
    else:
        await container.engine().dispose()
    key_source = container.key_source()
    if isinstance(key_source, JwksKeys):
        await key_source.aclose()


# ---- tool signatures, read from the REST models ------------------------------------------------


def _model_parameters(
    model: type[BaseModel], names: Iterable[str], *, optional: bool = False
) -> list[inspect.Parameter]:
    """Keyword parameters typed, constrained and described as the model's fields (the REST
    schema): the single source of each argument. `optional`: every one defaults to None."""
    parameters = []
    for name in names:
        field: FieldInfo = model.model_fields[name]
        annotation: Any = field.annotation
        if optional:
            annotation = annotation | None
        described = Field(
            description=field.description, examples=field.examples, json_schema_extra=field.json_schema_extra
        )
        default = None if optional else field.get_default(call_default_factory=True)
        typed = Annotated[(annotation, *field.metadata, described)]
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=typed))
    return parameters


def _tool_function(
    name: str, leading: list[inspect.Parameter], fields: list[inspect.Parameter], run: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """A function the SDK reads as a tool: `ctx` (the call's context) first, then the arguments."""
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
    return_annotation = typing.get_type_hints(run)["return"]

    async def tool(ctx: Context, **arguments: Any) -> Any:
        return await run(ctx, **arguments)

    parameters = [context, *leading, *fields]
    tool.__name__ = name
    tool.__signature__ = inspect.Signature(parameters, return_annotation=return_annotation)  # type: ignore[attr-defined]
    tool.__annotations__ = {"ctx": Context, "return": return_annotation}
    return tool


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    description: str
    fn: Callable[..., Awaitable[Any]]
    annotations: ToolAnnotations


_TASK_FIELDS = [name for name in TaskWrite.model_fields if name not in {"title", "description", "completed"}]
_LIST_FIELDS = [name for name in TaskListParams.model_fields if name != "status"]


class _Tools:
    """The tools, each a thin reading of its arguments around the use case its route calls."""

    def __init__(self, container: Container, acting_user: ActingUser) -> None:
        self.container = container
        self.acting_user = acting_user

    def all(self) -> list[_Tool]:
        user = _keyword("user_id", UserIdArg)
        task_id = _keyword("task_id", TaskIdArg)
        title = _model_parameters(TaskWrite, ["title"])
        description = _model_parameters(TaskWrite, ["description"])
        read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
        return [
            _Tool(
                "add_task",
                "Create a task for the user. Only `title` is required; give a due time (`due_at`, with an "
                "offset) or an all-day `due_date`, a `priority`, `tags`, a reminder (`remind_at`), a repeat "
                "rule (`recurrence`, an RRULE such as FREQ=WEEKLY;BYDAY=MO), a parent task (`parent_id`: the "
                "new task becomes one of its steps) or a category when the user asks for them. Returns the "
                "new task's `task_id`.",
                _tool_function(
                    "add_task",
                    [user, *title, *description],
                    [*_model_parameters(TaskWrite, _TASK_FIELDS), _keyword("idempotency_key", IdempotencyKeyArg)],
                    self.add_task,
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
            ),
            _Tool(
                "list_tasks",
                "List the user's tasks, newest first by default: `status` pending (open), completed or all; "
                "search title and description with `q`; filter by `priority`, `tag` (all must match), "
                "`category_id`, due window (`due_before`, `due_after`), `parent_id` (the steps of a task) or "
                "`top_level`; `sort` by created_at, updated_at, due_at, priority, title or position ('-' "
                "for descending). At most `limit` tasks come back; pass `next_cursor` as `cursor` for more.",
                _tool_function(
                    "list_tasks",
                    [user, *_model_parameters(TaskListParams, ["status"])],
                    _model_parameters(TaskListParams, _LIST_FIELDS),
                    self.list_tasks,
                ),
                read_only,
            ),
            _Tool(
                "complete_task",
                "Mark a task done (or, with `completed` false, open again). Completing a task completes its "
                "open steps; completing a repeating task creates its next occurrence "
                "(`task.next_occurrence_id`). Calling it again changes nothing.",
                _tool_function(
                    "complete_task",
                    [user, task_id],
                    [_keyword("completed", Annotated[bool, Field(description="false: open the task again")], True)],
                    self.complete_task,
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
            ),
            _Tool(
                "delete_task",
                "Delete a task for good, with all its steps. Not undoable: only when the user asks to delete "
                "or remove it (to finish a task, use `complete_task`).",
                _tool_function("delete_task", [user, task_id], [], self.delete_task),
                ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
            ),
            _Tool(
                "update_task",
                "Change some fields of a task: give only those to change; null clears an optional field "
                "(e.g. `due_at`: null removes the due time). To move a task among its siblings use "
                "`move_task`; to finish it, `complete_task`.",
                _tool_function(
                    "update_task",
                    [user, task_id],
                    _model_parameters(TaskWrite, ["title", "description", *_TASK_FIELDS], optional=True),
                    self.update_task,
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
            ),
            _Tool(
                "move_task",
                "Reorder or re-parent a task: put it right after the sibling `after` (null or absent: first), "
                "under `parent_id` (null: the top level; absent: where it is). Its steps move with it.",
                _tool_function(
                    "move_task", [user, task_id], _model_parameters(MoveWrite, ["parent_id", "after"]), self.move_task
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
            ),
            _Tool(
                "get_overview",
                "What is on the user's plate, in one call: open tasks overdue, due today and due in the next "
                "7 days, reckoned in the user's time zone, with counts. Start here for questions like "
                "'what do I have to do today?'.",
                _tool_function("get_overview", [user], [], self.get_overview),
                read_only,
            ),
            _Tool(
                "list_categories",
                "The user's categories (id, name, colour): pass a category's id as `category_id` to "
                "add_task, update_task or list_tasks.",
                _tool_function("list_categories", [user], [], self.list_categories),
                read_only,
            ),
            _Tool(
                "add_category",
                "Create a category (a name unique for the user, and an optional #rrggbb colour).",
                _tool_function(
                    "add_category", [user], _model_parameters(CategoryWrite, ["name", "color"]), self.add_category
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
            ),
            _Tool(
                "batch_tasks",
                "Apply several task changes at once, all together or none (when one fails, nothing is "
                "applied and the error names the operation). Each operation: `op` (create, update, patch, "
                "complete, move, delete), `id` of the task (not for create), `body` as the single tool "
                "takes it (create/update: the task's fields; patch: the fields to change; complete: "
                '{"completed": true}; move: {"parent_id", "after"}). A create may name its task with '
                '`ref` ("milk"); later operations use "$ref:milk" wherever a task id goes.',
                _tool_function(
                    "batch_tasks",
                    [user],
                    [
                        _keyword("operations", BatchOperationsArg),
                        _keyword("idempotency_key", IdempotencyKeyArg),
                    ],
                    self.batch_tasks,
                ),
                ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False),
            ),
        ]

    # ---- the tools ------------------------------------------------------------------------------

    async def add_task(self, ctx: Context, user_id: str, idempotency_key: str | None, **fields: Any) -> TaskResult:
        self._check_user(ctx, user_id)
        body = _validated(TaskWrite, fields)
        task_fields = TaskFields.of(body.model_dump())
        clock = self.container.clock()

        def created(task: Task) -> TaskResult:
            return _result(task, "created")

        create = task_use_cases.create_task
        if idempotency_key is None:
            return created(await self._run(create, clock, user_id, task_fields))
        arguments = body.model_dump(mode="json")
        once = self._once(
            user_id, idempotency_key, "add_task", arguments, TaskResult, created, create, clock, user_id, task_fields
        )
        return await _domain(once)

    async def list_tasks(self, ctx: Context, user_id: str, **arguments: Any) -> TaskListResult:
        self._check_user(ctx, user_id)
        params = _validated(TaskListParams, arguments)
        cursors = self.container.cursor_codec()

        async def listed() -> TaskListResult:
            query = params.task_query()
            if params.cursor:
                query = replace(query, after=cursors.decode(user_id, query, params.cursor))
            page = await task_use_cases.list_tasks(self.container.task_views(), user_id, query)
            next_cursor = cursors.encode(user_id, query, page.next_after) if page.next_after else None
            return TaskListResult(tasks=_read_views(page.items), next_cursor=next_cursor)

        return await _domain(listed())

    async def complete_task(self, ctx: Context, user_id: str, task_id: UUID, completed: bool) -> TaskResult:
        self._check_user(ctx, user_id)
        clock = self.container.clock()
        task = await self._run(task_use_cases.complete_task, clock, user_id, task_id, completed)
        return _result(task, "completed" if task.fields.completed else "reopened")

    async def delete_task(self, ctx: Context, user_id: str, task_id: UUID) -> TaskResult:
        self._check_user(ctx, user_id)

        async def delete() -> TaskResult:
            found = await task_use_cases.get_task(self.container.task_views(), user_id, task_id)
            clock = self.container.clock()
            await run(
                self.container.unit_of_work(),
                task_use_cases.delete_task,
                clock,
                user_id,
                task_id,
                if_match=found.version,
            )
            task = _read_views([found.view])[0]
            return TaskResult(task_id=task.id, status="deleted", title=task.title, task=task)

        return await _domain(delete())

    async def update_task(self, ctx: Context, user_id: str, task_id: UUID, **fields: Any) -> TaskResult:
        self._check_user(ctx, user_id)
        given = _arguments(ctx)
        changes = _validated(TaskPatch, {name: value for name, value in fields.items() if name in given})
        patch = changes.model_dump(exclude_unset=True)
        task = await self._run(task_use_cases.patch_task, self.container.clock(), user_id, task_id, patch)
        return _result(task, "updated")

    async def move_task(self, ctx: Context, user_id: str, task_id: UUID, **fields: Any) -> TaskResult:
        self._check_user(ctx, user_id)
        given = _arguments(ctx)
        move = _validated(MoveWrite, {name: value for name, value in fields.items() if name in given})
        parent_id = move.parent_id if "parent_id" in move.model_fields_set else task_use_cases.KEEP_PARENT
        clock = self.container.clock()
        task = await self._run(task_use_cases.move_task, clock, user_id, task_id, parent_id=parent_id, after=move.after)
        return _result(task, "moved")

    async def get_overview(self, ctx: Context, user_id: str) -> Overview:
        self._check_user(ctx, user_id)
        return await _domain(self._overview(user_id))

    async def list_categories(self, ctx: Context, user_id: str) -> CategoryListResult:
        self._check_user(ctx, user_id)
        categories = await _domain(category_use_cases.list_categories(self.container.reader(), user_id))
        return CategoryListResult(categories=[CategoryView.model_validate(category_view(c)) for c in categories])

    async def add_category(self, ctx: Context, user_id: str, **fields: Any) -> CategoryView:
        self._check_user(ctx, user_id)
        body = _validated(CategoryWrite, fields)
        clock = self.container.clock()
        new = _checked(CategoryFields(body.name, body.color).validated)  # before the unit of work
        category = await self._run(category_use_cases.create_category, clock, user_id, new)
        return CategoryView.model_validate(category_view(category))

    async def batch_tasks(
        self, ctx: Context, user_id: str, operations: list[AssistantBatchOperation], idempotency_key: str | None
    ) -> BatchResult:
        self._check_user(ctx, user_id)
        clock = self.container.clock()

        async def apply(uow: UnitOfWork) -> BatchResult | Unchanged[BatchResult]:
            # Read inside the command, after the key's check: a reused key is refused as such,
            # whatever the operations.
            read = operations_of(list(operations))
            done = await batch_use_cases.run_batch(uow, clock, user_id, read)
            tasks = done.value if isinstance(done, Unchanged) else done
            result = BatchResult(results=[_batch_result(op, task) for op, task in zip(read, tasks, strict=True)])
            return Unchanged(result) if isinstance(done, Unchanged) else result

        if idempotency_key is None:
            return await self._run(apply)
        arguments = [operation.model_dump(mode="json") for operation in operations]
        return await _domain(self._once(user_id, idempotency_key, "batch_tasks", arguments, BatchResult, _same, apply))

    # ---- shared -----------------------------------------------------------------------------------

    def _check_user(self, ctx: Context, user_id: str) -> None:
        """The one ownership check of a call (the use cases filter by this id in every query)."""
        if self.acting_user(ctx) != user_id:
            raise ToolError("user_id is not the user this connection acts for")

    async def _run(self, command: Command[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The command run by the runner (`todo_core.commands`), a domain error as a tool error."""
        return await _domain(run(self.container.unit_of_work(), command, *args, **kwargs))

    async def _once(
        self,
        user_id: str,
        key: str,
        tool: str,
        arguments: object,
        model: type[Model],
        respond: Callable[[T], Model],
        command: Command[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Model:
        """The tool's result (`respond` makes it of the command's), with the command run once per
        idempotency key by the runner, as the REST routes run theirs (`todo_core.commands`): a retry
        with the same key and arguments gets the first result back."""
        fingerprint = hashlib.sha256(f"MCP {tool}\n".encode() + orjson.dumps(arguments)).hexdigest()
        kept_for = timedelta(hours=self.container.settings().idempotency_key_hours)
        once = IdempotencyKey(user_id, key, fingerprint, kept_for)

        def recorded(result: T) -> Answer:
            return Answer(200, (), respond(result).model_dump_json().encode())

        uow, clock = self.container.unit_of_work(), self.container.clock()
        answer, _ = await run_once(uow, clock, once, recorded, command, *args, **kwargs)
        return model.model_validate_json(answer.body)

    async def _overview(self, user_id: str) -> Overview:
        settings = await get_settings(self.container.reader(), user_id)
        zone = ZoneInfo(settings.time_zone)
        now = self.container.clock().now()
        today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = (today + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=zone)
        week_end = (today + timedelta(days=8)).replace(tzinfo=None).replace(tzinfo=zone)
        views = self.container.task_views()

        async def section(due_after: datetime | None, due_before: datetime) -> OverviewSection:
            query = TaskQuery(
                status=Status.PENDING,
                due_after=due_after,
                due_before=due_before,
                sort=Sort(SortField.DUE_AT),
                limit=LIMIT_MAX,
            ).validated()
            page = await task_use_cases.list_tasks(views, user_id, query)
            return OverviewSection(tasks=_read_views(page.items), more=page.next_after is not None)

        earlier = await section(None, tomorrow)
        # Timed tasks due before now are overdue; an all-day task is only overdue after its day.
        overdue = [t for t in earlier.tasks if _due_before(t, now, today)]
        due_today = [t for t in earlier.tasks if not _due_before(t, now, today)]
        week = await section(tomorrow, week_end)
        sections = {
            "overdue": OverviewSection(tasks=overdue, more=earlier.more),
            "today": OverviewSection(tasks=due_today, more=earlier.more),
            "next_7_days": week,
        }
        return Overview(
            time_zone=settings.time_zone,
            now=now,
            counts={name: len(found.tasks) for name, found in sections.items()},
            **sections,
        )


def _same(result: Model) -> Model:
    return result


def _due_before(task: TaskView, now: datetime, today: datetime) -> bool:
    if task.due_at is not None:
        return task.due_at < now
    return task.due_date is not None and task.due_date < today.date()


def _arguments(ctx: Context) -> set[str]:
    """The names of the arguments the call gave (a merge patch: absent is unchanged, null clears)."""
    arguments = (ctx.request_context.params or {}).get("arguments")
    return set(arguments) if isinstance(arguments, Mapping) else set()


def _validated(model: type[Model], values: Mapping[str, Any]) -> Model:
    """The arguments read by the REST model of the same input, its refusal named field by field."""
    try:
        # As the JSON the call carried: the SDK has already read it with the same field types.
        return model.model_validate(to_jsonable_python(dict(values)))
    except ValidationError as error:
        raise ToolError(_validation_text(ValidationFailed(field_errors(error)))) from error


def _result(task: Task, status: Literal["created", "updated", "completed", "reopened", "moved"]) -> TaskResult:
    read = TaskView.model_validate(task_view(task))
    return TaskResult(task_id=task.id, status=status, title=task.fields.title, task=read)


def _batch_result(operation: batch_use_cases.Operation, task: Task | None) -> BatchItem:
    if task is None:  # a delete: the batch returns no task
        deleted = operation.task if isinstance(operation, batch_use_cases.DeleteTask) else None
        return BatchItem(
            task_id=deleted if isinstance(deleted, UUID) else None, status="deleted", title=None, task=None
        )
    status: Literal["created", "updated", "completed", "reopened", "moved"] = "updated"
    if isinstance(operation, batch_use_cases.CreateTask):
        status = "created"
    elif isinstance(operation, batch_use_cases.CompleteTask):
        status = "completed" if task.fields.completed else "reopened"
    elif isinstance(operation, batch_use_cases.MoveTask):
        status = "moved"
    return BatchItem(**_result(task, status).model_dump())


def _read_views(items: Iterable[object]) -> list[TaskView]:
    """Views as the read side renders them (mappings, or JSON the database wrote) as models."""
    return [TaskView.model_validate(item) for item in orjson.loads(orjson.dumps(list(items)))]


def _validation_text(error: ValidationFailed) -> str:
    return "Invalid arguments: " + "; ".join(f"{e.field}: {e.message}" for e in error.errors)


async def _domain(call: Awaitable[Result]) -> Result:
    """The use case's answer; a domain error as a tool error whose text says what the REST problem
    says, and never whether another user's task exists."""
    try:
        return await call
    except DomainError as error:
        raise ToolError(_error_text(error)) from error


def _checked(check: Callable[[], Result]) -> Result:
    """What a check of a tool's input returns; its domain error as a tool error. Input is
    checked before the unit of work, so that bad input is said so even while the database is
    down."""
    try:
        return check()
    except DomainError as error:
        raise ToolError(_error_text(error)) from error


def _error_text(error: DomainError) -> str:
    if isinstance(error, BatchOperationFailed):
        return f"Operation {error.index} failed, nothing was applied: {_error_text(error.error)}"
    if isinstance(error, ValidationFailed):
        return _validation_text(error)
    if isinstance(error, NotFound):
        return f"No such {error.kind} for this user"
    if isinstance(error, PreconditionFailed):
        return f"The task changed meanwhile (now version {error.current_version}): read it again"
    if isinstance(error, IdempotencyKeyReused):
        return "Invalid arguments: idempotency_key: was used before with other arguments"
    if isinstance(error, InvalidCursor):
        return "Invalid arguments: cursor: not a cursor of this list; start again without it"
    if isinstance(error, StorageUnavailable):
        return "The task store is unavailable right now; try again shortly"
    if isinstance(error, Conflict):
        return f"Conflict: {error}"
    return "The request was refused"
