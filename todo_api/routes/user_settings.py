"""Routes under /api/{user_id}/settings: the user's settings."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response

from todo_api.dependencies import Reader, Uow, UserId
from todo_api.problems import problem_responses
from todo_api.representation import json_response
from todo_api.routing import ApiRoute
from todo_api.schemas.user_settings import SettingsRead, SettingsWrite
from todo_core.commands import run
from todo_core.use_cases import settings as use_cases
from todo_core.user_settings import UserSettings

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}/settings",
    tags=["settings"],
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)


@router.get("", response_model=SettingsRead)
async def get_settings(user_id: UserId, uow: Reader) -> Response:
    """The user's settings; the defaults (`UTC`) until the user saves any."""
    return json_response(dataclasses.asdict(await use_cases.get_settings(uow, user_id)))


@router.put("", response_model=SettingsRead)
async def replace_settings(user_id: UserId, uow: Uow, body: SettingsWrite) -> Response:
    """Save the user's settings. The time zone is the one new tasks take when they name none;
    existing tasks keep their own."""
    # Checked before the unit of work: bad input is a 422 even while the database is down.
    settings = UserSettings(**body.model_dump()).validated()
    saved = await run(uow, use_cases.replace_settings, user_id, settings)
    return json_response(dataclasses.asdict(saved))
