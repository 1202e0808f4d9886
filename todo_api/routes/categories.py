"""Routes under /api/{user_id}/categories."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Response

from todo_api.dependencies import CurrentClock, Reader, Uow, UserId
from todo_api.idempotency import Idempotent
from todo_api.problems import problem_responses
from todo_api.representation import if_match_version, json_response, location, versioned_response
from todo_api.routing import ApiRoute
from todo_api.schemas.categories import CategoryPatch, CategoryRead, CategoryWrite
from todo_core.category import Category, CategoryFields
from todo_core.commands import run
from todo_core.use_cases import categories as use_cases
from todo_core.views import category_view

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}/categories",
    tags=["categories"],
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)


@router.get("", response_model=list[CategoryRead])
async def list_categories(user_id: UserId, uow: Reader) -> Response:
    """The user's categories, by name."""
    found = await use_cases.list_categories(uow, user_id)
    return json_response([category_view(category) for category in found])


@router.post("", response_model=CategoryRead, status_code=201, responses=problem_responses(409))
async def create_category(
    user_id: UserId, uow: Uow, clock: CurrentClock, body: CategoryWrite, idempotency: Idempotent
) -> Response:
    """Create a category; its name must be new to the user, in any letter case. With an
    `Idempotency-Key`, a retry creates nothing more."""
    # Checked before the unit of work: bad input is a 422 even while the database is down.
    fields = CategoryFields(body.name, body.color).validated()

    def created(category: Category) -> Response:
        url = location(user_id, "categories", category.id)
        return _category_response(category, status_code=201, headers={"Location": url})

    return await idempotency.run(uow, user_id, created, use_cases.create_category, clock, user_id, fields)


@router.get("/{category_id}", response_model=CategoryRead, responses=problem_responses(404))
async def get_category(user_id: UserId, uow: Reader, category_id: UUID) -> Response:
    return _category_response(await use_cases.get_category(uow, user_id, category_id))


@router.patch("/{category_id}", response_model=CategoryRead, responses=problem_responses(404, 409, 412))
async def update_category(
    user_id: UserId,
    uow: Uow,
    clock: CurrentClock,
    category_id: UUID,
    body: CategoryPatch,
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description='The category\'s ETag, e.g. "3": the change applies only to that version'),
    ] = None,
) -> Response:
    """Rename or recolor a category (JSON merge patch; null clears the color)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    version = if_match_version(if_match)
    category = await run(uow, use_cases.update_category, clock, user_id, category_id, changes, if_match=version)
    return _category_response(category)


@router.delete("/{category_id}", status_code=204, response_class=Response, responses=problem_responses(404))
async def delete_category(user_id: UserId, uow: Uow, clock: CurrentClock, category_id: UUID) -> Response:
    """Delete a category; its tasks keep existing, without a category."""
    await run(uow, use_cases.delete_category, clock, user_id, category_id)
    return Response(status_code=204)


def _category_response(
    category: Category, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return versioned_response(category_view(category), category.version, status_code=status_code, headers=headers)
