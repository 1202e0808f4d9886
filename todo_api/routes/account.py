"""DELETE /api/{user_id}: erasing everything the service holds for a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from todo_api.dependencies import Uow, UserId
from todo_api.problems import problem_responses
from todo_api.routing import ApiRoute
from todo_core.commands import run
from todo_core.use_cases import account as use_cases

router = APIRouter(route_class=ApiRoute, tags=["account"], responses=problem_responses(401, 403, 422, 503))


@router.delete("/api/{user_id}", status_code=204)
async def erase_account(
    user_id: UserId,
    uow: Uow,
    confirm: Annotated[str, Query(description="The user id again: nothing is erased without it")],
) -> Response:
    """Erase every row the service holds for the user, in one transaction: tasks, categories,
    settings, calendar feeds, idempotency keys and sync history. Afterwards the user's lists are
    empty, their feed URLs are 404, and a sync token from before is 410 (sync again from a
    snapshot). Irreversible."""
    use_cases.check_confirmation(user_id, confirm)  # before the unit of work: a 422 even with the database down
    await run(uow, use_cases.erase_account, user_id, confirm)
    return Response(status_code=204)
