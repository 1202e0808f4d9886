"""FastAPI dependencies: what a route needs, resolved from the app's container per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from todo_adapters.auth import KeySource
from todo_adapters.broker import ChangeBroker
from todo_api.calendars import RenderedCalendars
from todo_api.container import Container
from todo_api.cursor import CursorCodec
from todo_api.exports import RunningExports
from todo_api.metrics import Metrics
from todo_api.schema_gate import SchemaGate
from todo_api.settings import Settings
from todo_api.sync_tokens import SyncTokenCodec
from todo_core.clock import Clock
from todo_core.errors import AuthenticationFailed, CredentialProblem
from todo_core.ports import ChangeFeed, ExportReader, TaskViews, UnitOfWork


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


# The dependencies below are `async def` although they do not await: FastAPI runs a plain
# `def` dependency in a worker thread, a hop that costs more than the work itself.


async def unit_of_work(request: Request) -> UnitOfWork:
    uow: UnitOfWork = _container(request).unit_of_work()
    return uow


async def reader(request: Request) -> UnitOfWork:
    uow: UnitOfWork = _container(request).reader()
    return uow


async def task_views(request: Request) -> TaskViews:
    views: TaskViews = _container(request).task_views()
    return views


async def clock(request: Request) -> Clock:
    current: Clock = _container(request).clock()
    return current


async def cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = _container(request).cursor_codec()
    return codec


async def change_feed(request: Request) -> ChangeFeed:
    feed: ChangeFeed = _container(request).change_feed()
    return feed


async def running_exports(request: Request) -> RunningExports:
    running: RunningExports = _container(request).running_exports()
    return running


async def export_reader(request: Request) -> ExportReader:
    reader: ExportReader = _container(request).export_reader()
    return reader


async def sync_tokens(request: Request) -> SyncTokenCodec:
    codec: SyncTokenCodec = _container(request).sync_tokens()
    return codec


async def broker(request: Request) -> ChangeBroker:
    found: ChangeBroker = _container(request).broker()
    return found


async def metrics(request: Request) -> Metrics:
    found: Metrics = _container(request).metrics()
    return found


async def rendered_calendars(request: Request) -> RenderedCalendars:
    found: RenderedCalendars = _container(request).calendars()
    return found


async def key_source(request: Request) -> KeySource:
    found: KeySource = _container(request).key_source()
    return found


async def schema_gate(request: Request) -> SchemaGate:
    found: SchemaGate = _container(request).schema_gate()
    return found


async def settings(request: Request) -> Settings:
    resolved: Settings = _container(request).settings()
    return resolved


async def token_valid_until(request: Request) -> float:
    """The instant (POSIX seconds) the request's bearer token stops being accepted, as
    `Authentication` found it.

    :raises AuthenticationFailed: the middleware did not vouch for this request.
    """
    valid_until = request.scope.get("state", {}).get("token_valid_until")
    if not isinstance(valid_until, float):
        raise AuthenticationFailed(CredentialProblem.MISSING)
    return valid_until


async def authorized_user(request: Request, user_id: str) -> str:
    """The path's `user_id`, which `Authentication` proved the caller to be before the
    request was routed (it compares the token's subject with the path: that is the one check).

    :raises AuthenticationFailed: the middleware did not vouch for this request (a route
        mounted outside /api/ by mistake).
    """
    if request.scope.get("state", {}).get("user_id") != user_id:
        raise AuthenticationFailed(CredentialProblem.MISSING)
    return user_id


UserId = Annotated[str, Depends(authorized_user)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work)]
Reader = Annotated[UnitOfWork, Depends(reader)]
Views = Annotated[TaskViews, Depends(task_views)]
CurrentClock = Annotated[Clock, Depends(clock)]
Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
Feed = Annotated[ChangeFeed, Depends(change_feed)]
Calendars = Annotated[RenderedCalendars, Depends(rendered_calendars)]
Exports = Annotated[ExportReader, Depends(export_reader)]
RunningExportsOfProcess = Annotated[RunningExports, Depends(running_exports)]
SyncTokens = Annotated[SyncTokenCodec, Depends(sync_tokens)]
Broker = Annotated[ChangeBroker, Depends(broker)]
CurrentSettings = Annotated[Settings, Depends(settings)]
AppMetrics = Annotated[Metrics, Depends(metrics)]
Keys = Annotated[KeySource, Depends(key_source)]
Schema = Annotated[SchemaGate, Depends(schema_gate)]
TokenValidUntil = Annotated[float, Depends(token_valid_until)]
