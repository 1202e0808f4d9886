"""Use cases on categories. The commands stage in an entered unit of work and commit nothing
(`todo_core.commands` runs them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from todo_core.category import Category, CategoryFields
from todo_core.clock import Clock
from todo_core.commands import Unchanged
from todo_core.errors import FieldError, NotFound, PreconditionFailed, ValidationFailed
from todo_core.ports import UnitOfWork


async def create_category(uow: UnitOfWork, clock: Clock, user_id: str, fields: CategoryFields) -> Category:
    """:raises ValidationFailed: a field breaks a rule.
    :raises Conflict: the user already has a category of that name."""
    category = Category.new(user_id, fields.validated(), clock.now())
    await uow.categories.add(category)
    return category


async def list_categories(uow: UnitOfWork, user_id: str) -> Sequence[Category]:
    async with uow:
        return await uow.categories.list_for_user(user_id)


async def get_category(uow: UnitOfWork, user_id: str, category_id: UUID) -> Category:
    """:raises NotFound: the user has no category with this id."""
    async with uow:
        return await _existing(uow, user_id, category_id)


async def update_category(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    category_id: UUID,
    changes: Mapping[str, Any],
    *,
    if_match: int | None = None,
) -> Category | Unchanged[Category]:
    """Apply a merge patch of `name` and `color` (None clears the color).

    :raises NotFound, PreconditionFailed, ValidationFailed, Conflict.
    """
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed(FieldError("name", "cannot be null"))
    category = await _existing(uow, user_id, category_id)
    if if_match is not None and if_match != category.version:
        raise PreconditionFailed(category.version)
    fields = dataclasses.replace(category.fields, **changes).validated()
    if fields == category.fields:
        return Unchanged(category)  # no new version, nothing for sync to deliver
    updated = category.with_fields(fields, clock.now())
    await uow.categories.update(updated)
    return updated


async def delete_category(uow: UnitOfWork, clock: Clock, user_id: str, category_id: UUID) -> None:
    """Delete the category and take it off its tasks, in one transaction.

    :raises NotFound: the user has no category with this id.
    """
    now = clock.now()
    if not await uow.categories.remove(user_id, category_id, now):
        raise NotFound("category")
    await uow.tasks.clear_category(user_id, category_id, now)


async def _existing(uow: UnitOfWork, user_id: str, category_id: UUID) -> Category:
    category = await uow.categories.get(user_id, category_id)
    if category is None:
        raise NotFound("category")
    return category
