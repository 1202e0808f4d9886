"""POST /api/{user_id}/batch: several task operations, applied all together or not at all."""

from __future__ import annotations

from fastapi import APIRouter, Response

from todo_api.batch_operations import operations_of
from todo_api.dependencies import CurrentClock, CurrentSettings, Uow, UserId
from todo_api.idempotency import Idempotent
from todo_api.problems import problem_responses
from todo_api.representation import json_response
from todo_api.routing import ApiRoute
from todo_api.schemas.batch import BatchRead, BatchWrite
from todo_core.task import Task
from todo_core.use_cases import batch as use_cases
from todo_core.views import task_view

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}",
    tags=["tasks"],
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)

#: The status each operation's single route answers with when it succeeds.
_STATUSES: dict[type[use_cases.Operation], int] = {use_cases.CreateTask: 201, use_cases.DeleteTask: 204}


@router.post("/batch", response_model=BatchRead, responses=problem_responses(404, 409, 412))
async def run_batch(
    user_id: UserId,
    uow: Uow,
    clock: CurrentClock,
    body: BatchWrite,
    idempotency: Idempotent,
    settings: CurrentSettings,
) -> Response:
    """Apply 1-100 task operations (`create`, `update`, `patch`, `complete`, `move`, `delete`) in
    order, in one transaction: all of them, or, when one fails, none. A create may name its task
    (`"ref": "groceries"`) for later operations to use as `"$ref:groceries"` wherever a task id
    goes. The first operation that fails answers for the batch: a `batch-failed` problem with the
    operation's status, its index (`operation`) and its own problem (`problem`). With an
    `Idempotency-Key`, a retry applies nothing more."""
    operations = operations_of(body.operations)

    def applied(tasks: list[Task | None]) -> Response:
        results = [
            {"status": _STATUSES.get(type(operation), 200), "body": None if task is None else task_view(task)}
            for operation, task in zip(operations, tasks, strict=True)
        ]
        return json_response({"results": results})

    batch = use_cases.run_batch
    return await idempotency.run(uow, user_id, applied, batch, clock, user_id, operations, at_most=settings.max_tasks)
