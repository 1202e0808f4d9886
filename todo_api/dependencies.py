"""FastAPI dependencies: what a route needs, resolved from the app's container per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from todo_api.container import Container
from todo_api.cursor import CursorCodec
from todo_core.clock import Clock
from todo_core.errors import AuthenticationFailed, Forbidden
from todo_core.ports import UnitOfWork

_bearer = HTTPBearer(auto_error=False, description="A JWT from Better Auth (or `todo token USER_ID`)")


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def unit_of_work(request: Request) -> UnitOfWork:
    uow: UnitOfWork = _container(request).unit_of_work()
    return uow


def clock(request: Request) -> Clock:
    current: Clock = _container(request).clock()
    return current


def cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = _container(request).cursor_codec()
    return codec


async def authorized_user(
    request: Request,
    user_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's `user_id`, once the bearer token proves the caller is that user.

    :raises AuthenticationFailed: no bearer token, or one that does not verify (401).
    :raises Forbidden: the token is for another user (403).
    """
    if credentials is None:
        raise AuthenticationFailed("no bearer token")
    subject = await _container(request).identity_verifier().verify(credentials.credentials)
    if subject != user_id:
        raise Forbidden("the token's subject is not the user in the path")
    return user_id


UserId = Annotated[str, Depends(authorized_user)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work)]
CurrentClock = Annotated[Clock, Depends(clock)]
Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
