"""Use cases on a user's account as a whole."""

from __future__ import annotations

from todo_core.errors import ValidationFailed
from todo_core.ports import UnitOfWork


async def erase_account(uow: UnitOfWork, user_id: str, confirm: str | None) -> None:
    """Delete everything the service holds for the user, in one transaction. `confirm` must be
    the user id again: a request cannot erase an account by accident.

    :raises ValidationFailed: `confirm` is not the user id.
    """
    check_confirmation(user_id, confirm)
    await uow.account.erase(user_id)


def check_confirmation(user_id: str, confirm: str | None) -> None:
    """:raises ValidationFailed: `confirm` is not the user id."""
    if confirm != user_id:
        raise ValidationFailed.single("confirm", "must be the user id itself, to confirm erasing every row of it")
