"""FastAPI dependencies: what a route needs, resolved from the app's container per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
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


# The dependencies below are `async def` although they do not await: FastAPI runs a plain
# `def` dependency in a worker thread, a hop that costs more than the work itself.


async def unit_of_work(request: Request) -> UnitOfWork:
    uow: UnitOfWork = _container(request).unit_of_work()
    return uow


async def clock(request: Request) -> Clock:
    current: Clock = _container(request).clock()
    return current


async def cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = _container(request).cursor_codec()
    return codec


async def authorized_user(
    request: Request,
    user_id: str,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    """The path's `user_id`, which `BearerAuthentication` has proved the caller to be.

    (`_credentials` is there to declare the bearer scheme in the OpenAPI document; the token
    itself was checked before the request reached the router.)

    :raises AuthenticationFailed: the middleware did not vouch for this request.
    :raises Forbidden: the vouched-for user is not the path's user.
    """
    authenticated: str | None = getattr(request.state, "user_id", None)
    if authenticated is None:
        raise AuthenticationFailed("the request was not authenticated")
    if authenticated != user_id:
        raise Forbidden("the token's subject is not the user in the path")
    return user_id


UserId = Annotated[str, Depends(authorized_user)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work)]
CurrentClock = Annotated[Clock, Depends(clock)]
Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
