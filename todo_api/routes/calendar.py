"""The user's tasks as an RFC 5545 calendar: with the bearer token under /api/{user_id}/, and
through secret subscription links (`/feeds/<secret>.ics`) for calendar apps, which cannot send one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from todo_api.calendars import CalendarKey, RenderedCalendars
from todo_api.dependencies import Calendars, CurrentClock, CurrentSettings, Feed, Reader, Uow, UserId, Views
from todo_api.ical import MEDIA_TYPE
from todo_api.problems import problem_responses
from todo_api.representation import json_response, location, public_base, tag_listed
from todo_api.routing import ApiRoute
from todo_api.schemas.calendar import CalendarFeedCreated, CalendarFeedRead
from todo_api.schemas.tasks import TaskStatus
from todo_api.settings import Settings
from todo_core.calendar_feed import CalendarFeed
from todo_core.clock import Clock
from todo_core.commands import run
from todo_core.ports import ChangeFeed, TaskViews, UnitOfWork
from todo_core.query import Status
from todo_core.use_cases import calendar as use_cases
from todo_core.use_cases.calendar import CALENDAR_COMPLETED_DAYS, CALENDAR_MAX_TASKS, CalendarBounds

#: How long a calendar app may use its copy before asking again (with `If-None-Match`).
CACHE_CONTROL = "private, max-age=300"

_ETAG = {
    "description": "The calendar's entity tag, which changes when the user's data does: send it as `If-None-Match`",
    "schema": {"type": "string"},
}
_CALENDAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The tasks as an RFC 5545 calendar, one VTODO each",
        "content": {"text/calendar": {"schema": {"type": "string"}}},
        "headers": {
            "ETag": _ETAG,
            "Cache-Control": {"description": "How long the copy may be used", "schema": {"type": "string"}},
        },
    },
    304: {
        "description": "Not modified: the calendar is still the one whose ETag was sent (answered without "
        "reading the tasks)",
        "headers": {"ETag": _ETAG},
    },
}
IfNoneMatch = Annotated[
    str | None, Header(alias="If-None-Match", description="A calendar's ETag you hold: 304 if it is still current")
]
#: What every calendar route says of what a calendar holds (the figures are the defaults).
_BOUNDS = (
    f"A calendar holds at most `TODO_CALENDAR_MAX_TASKS` (default {CALENDAR_MAX_TASKS:,}) tasks: the open ones "
    "first, soonest due first (undated ones last, oldest first), then the completed ones it shows, most "
    "recently changed first. Completed tasks are shown for `TODO_CALENDAR_COMPLETED_DAYS` "
    f"(default {CALENDAR_COMPLETED_DAYS}) whole UTC days after their completion. The `ETag` is that of the "
    "user's data as it last changed: `If-None-Match` with it answers 304 without reading a task, and a "
    "calendar rendered once is served again until the user's tasks or categories change."
)


def _described(text: str) -> str:
    return f"{text}\n\n{_BOUNDS}"


router = APIRouter(
    route_class=ApiRoute, prefix="/api/{user_id}", tags=["calendar"], responses=problem_responses(401, 403, 422, 503)
)
feeds_router = APIRouter(route_class=ApiRoute, tags=["calendar"], responses=problem_responses(422, 503))


@dataclass(frozen=True, slots=True)
class _Sources:
    """What serving a calendar reads: the user's change number, then (when it must render) the
    tasks and categories; and what decides its selection (settings, today's date)."""

    views: TaskViews
    reader: UnitOfWork
    feed: ChangeFeed
    calendars: RenderedCalendars
    settings: Settings
    clock: Clock


async def _sources(
    views: Views, reader: Reader, feed: Feed, calendars: Calendars, settings: CurrentSettings, clock: CurrentClock
) -> _Sources:
    return _Sources(views, reader, feed, calendars, settings, clock)


Sources = Annotated[_Sources, Depends(_sources)]


@router.get(
    "/calendar.ics",
    response_class=Response,
    responses=_CALENDAR_RESPONSES,
    description=_described(
        "The user's tasks as an RFC 5545 calendar (`text/calendar`): the open ones (`status=pending`, the "
        "default), those completed lately (`completed`), or both (`all`). Calendar apps that cannot send a "
        "token subscribe to a feed instead."
    ),
)
async def get_calendar(
    user_id: UserId,
    sources: Sources,
    if_none_match: IfNoneMatch = None,
    status: Annotated[TaskStatus, Query(description="`pending` (open tasks) or `all`; or `completed`")] = (
        TaskStatus.PENDING
    ),
) -> Response:
    return await _calendar_response(sources, user_id, Status(status), if_none_match)


@feeds_router.get(
    "/feeds/{secret}.ics",
    response_class=Response,
    responses={**_CALENDAR_RESPONSES, **problem_responses(404)},
    description=_described(
        "A subscription link: the calendar of the feed's owner, as `GET /api/{user_id}/calendar.ics?status=all` "
        "gives it (open tasks, and those completed lately, marked completed), with no token (the secret is the "
        "credential). A revoked feed is a 404, exactly like a secret that never existed."
    ),
)
async def get_calendar_feed(secret: str, sources: Sources, if_none_match: IfNoneMatch = None) -> Response:
    owner = await use_cases.feed_owner(sources.reader, secret)
    return await _calendar_response(sources, owner, Status.ALL, if_none_match)


@router.post(
    "/calendar-feeds",
    response_model=CalendarFeedCreated,
    status_code=201,
    responses={201: {"description": "Created"}, **problem_responses(409)},
)
async def create_calendar_feed(
    request: Request, user_id: UserId, uow: Uow, clock: CurrentClock, settings: CurrentSettings
) -> Response:
    """Make a subscription link to the user's calendar. Its `url` (with the secret) is in this
    response only, and so is `webcal_url`, the same link for calendar apps to open as a
    subscription; keep them, or revoke the feed and make another."""
    issued = await run(uow, use_cases.create_feed, clock, user_id, at_most=settings.max_calendar_feeds)
    url = f"{public_base(request, settings)}/feeds/{quote(issued.secret, safe='')}.ics"
    body = {**_feed_view(issued.feed), "url": url, "webcal_url": "webcal://" + url.split("://", 1)[1]}
    return json_response(
        body, status_code=201, headers={"Location": location(user_id, "calendar-feeds", issued.feed.id)}
    )


@router.get("/calendar-feeds", response_model=list[CalendarFeedRead])
async def list_calendar_feeds(user_id: UserId, reader: Reader) -> Response:
    """The user's subscription links, oldest first, without their secrets (which are not kept)."""
    return json_response([_feed_view(feed) for feed in await use_cases.list_feeds(reader, user_id)])


@router.delete("/calendar-feeds/{feed_id}", status_code=204, responses=problem_responses(404))
async def revoke_calendar_feed(user_id: UserId, feed_id: UUID, uow: Uow) -> Response:
    """Revoke a subscription link: from now on its URL is a 404."""
    await run(uow, use_cases.revoke_feed, user_id, feed_id)
    return Response(status_code=204)


async def _calendar_response(sources: _Sources, user_id: str, status: Status, if_none_match: str | None) -> Response:
    settings = sources.settings
    bounds = CalendarBounds(settings.calendar_max_tasks, settings.calendar_completed_days)
    selection = use_cases.calendar_selection(status, bounds, sources.clock.now())
    key = CalendarKey(user_id, await use_cases.change_number(sources.feed, user_id), selection)
    headers = {"ETag": key.entity_tag, "Cache-Control": CACHE_CONTROL}
    if if_none_match and tag_listed(if_none_match, key.entity_tag):
        return Response(status_code=304, headers=headers)
    body = await sources.calendars.body(
        key, lambda: use_cases.calendar_tasks(sources.views, sources.reader, user_id, selection)
    )
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


def _feed_view(feed: CalendarFeed) -> dict[str, object]:
    return {"id": feed.id, "created_at": feed.created_at}
