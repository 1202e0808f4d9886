"""The user's tasks as an RFC 5545 calendar: with the bearer token under /api/{user_id}/, and
through secret subscription links (`/feeds/<secret>.ics`) for calendar apps, which cannot send one."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from todo_api.dependencies import CurrentClock, CurrentSettings, Reader, Uow, UserId, Views
from todo_api.ical import MEDIA_TYPE, calendar_bytes, entity_tag
from todo_api.problems import problem_responses
from todo_api.representation import json_response, location, tag_listed
from todo_api.schemas import CalendarFeedCreated, CalendarFeedList, TaskStatus
from todo_api.settings import Settings
from todo_core.calendar_feed import CalendarFeed
from todo_core.ports import TaskViews, UnitOfWork
from todo_core.query import Status
from todo_core.use_cases import calendar as use_cases

#: How long a calendar app may use its copy before asking again (with `If-None-Match`).
CACHE_CONTROL = "private, max-age=300"

_CALENDAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The tasks as an RFC 5545 calendar, one VTODO each",
        "content": {"text/calendar": {"schema": {"type": "string"}}},
        "headers": {
            "ETag": {"$ref": "#/components/headers/ETag"},
            "Cache-Control": {"description": "How long the copy may be used", "schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified: the calendar is still the one whose ETag was sent"},
}
IfNoneMatch = Annotated[
    str | None, Header(alias="If-None-Match", description="A calendar's ETag you hold: 304 if it is still current")
]

router = APIRouter(prefix="/api/{user_id}", tags=["calendar"], responses=problem_responses(401, 403, 422, 503))
feeds_router = APIRouter(tags=["calendar"], responses=problem_responses(422, 503))


@router.get("/calendar.ics", response_class=Response, responses=_CALENDAR_RESPONSES)
async def get_calendar(
    user_id: UserId,
    views: Views,
    reader: Reader,
    if_none_match: IfNoneMatch = None,
    status: Annotated[TaskStatus, Query(description="`pending` (open tasks) or `all`; or `completed`")] = (
        TaskStatus.PENDING
    ),
) -> Response:
    """The user's tasks as an RFC 5545 calendar (`text/calendar`): open tasks unless `status`
    says otherwise. Calendar apps that cannot send a token subscribe to a feed instead."""
    return await _calendar_response(views, reader, user_id, Status(status), if_none_match)


@feeds_router.get(
    "/feeds/{secret}.ics", response_class=Response, responses={**_CALENDAR_RESPONSES, **problem_responses(404)}
)
async def get_calendar_feed(secret: str, views: Views, reader: Reader, if_none_match: IfNoneMatch = None) -> Response:
    """A subscription link: the open tasks of the feed's owner, as `GET /api/{user_id}/calendar.ics`
    gives them, with no token (the secret is the credential). A revoked feed is a 404, exactly
    like a secret that never existed."""
    owner = await use_cases.feed_owner(reader, secret)
    return await _calendar_response(views, reader, owner, Status.PENDING, if_none_match)


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
    response only; keep it, or revoke the feed and make another."""
    issued = await use_cases.create_feed(uow, clock, user_id, at_most=settings.max_calendar_feeds)
    url = f"{_public_base(request, settings)}/feeds/{quote(issued.secret, safe='')}.ics"
    body = {**_feed_view(issued.feed), "url": url}
    return json_response(
        body, status_code=201, headers={"Location": location(user_id, "calendar-feeds", issued.feed.id)}
    )


@router.get("/calendar-feeds", response_model=CalendarFeedList)
async def list_calendar_feeds(user_id: UserId, reader: Reader) -> Response:
    """The user's subscription links, oldest first, without their secrets (which are not kept)."""
    return json_response({"items": [_feed_view(feed) for feed in await use_cases.list_feeds(reader, user_id)]})


@router.delete("/calendar-feeds/{feed_id}", status_code=204, responses=problem_responses(404))
async def revoke_calendar_feed(user_id: UserId, feed_id: UUID, uow: Uow) -> Response:
    """Revoke a subscription link: from now on its URL is a 404."""
    await use_cases.revoke_feed(uow, user_id, feed_id)
    return Response(status_code=204)


async def _calendar_response(
    views: TaskViews, reader: UnitOfWork, user_id: str, status: Status, if_none_match: str | None
) -> Response:
    body = calendar_bytes(await use_cases.calendar_tasks(views, reader, user_id, status))
    tag = entity_tag(body)
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    if if_none_match and tag_listed(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


def _feed_view(feed: CalendarFeed) -> dict[str, object]:
    return {"id": feed.id, "created_at": feed.created_at}


def _public_base(request: Request, settings: Settings) -> str:
    """Where clients reach this service: `TODO_PUBLIC_URL` when set; otherwise the request's own
    scheme, `Host` and `root_path`, as the server gives them (`todo serve` trusts no
    `X-Forwarded-*` header: behind a proxy that changes the scheme or host, set the setting)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")
