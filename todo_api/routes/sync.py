"""Routes for clients that keep a copy of the user's data: what changed since they last synced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from todo_api.dependencies import Feed, SyncTokens, UserId
from todo_api.problems import problem_responses
from todo_api.representation import json_response
from todo_api.routing import ApiRoute
from todo_api.schemas.sync import ChangeFeedPage
from todo_core.sync import CHANGES_LIMIT_DEFAULT, CHANGES_LIMIT_MAX
from todo_core.use_cases import sync

router = APIRouter(
    route_class=ApiRoute, prefix="/api/{user_id}", tags=["sync"], responses=problem_responses(400, 401, 403, 422, 503)
)


@router.get("/changes", response_model=ChangeFeedPage, responses=problem_responses(410))
async def list_changes(
    user_id: UserId,
    feed: Feed,
    tokens: SyncTokens,
    since: Annotated[
        str | None,
        Query(max_length=512, description="`next_since` of the last sync; absent: a snapshot of everything"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=CHANGES_LIMIT_MAX)] = CHANGES_LIMIT_DEFAULT,
) -> Response:
    """Everything of the user's created, changed or deleted after `since`, oldest change first,
    in pages: while `has_more`, ask again with `next_since`. Without `since`, a snapshot (paged
    the same way). A `since` too old to bring up to date (its deletions are forgotten) is 410:
    sync again from a snapshot."""
    position = tokens.decode(user_id, since) if since is not None else None
    page = await sync.changes_since(feed, user_id, position, limit)
    return json_response(
        {
            "tasks": page.tasks,
            "categories": page.categories,
            "deleted": {"tasks": page.deleted_tasks, "categories": page.deleted_categories},
            "next_since": tokens.encode(user_id, page.next),
            "has_more": page.has_more,
        }
    )
