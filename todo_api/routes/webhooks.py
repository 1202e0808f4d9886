"""A user's webhook endpoints (Standard Webhooks), and what was sent to each."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from todo_api.dependencies import CurrentClock, CurrentSettings, Reader, Uow, UserId
from todo_api.problems import problem_responses
from todo_api.representation import json_response, location
from todo_api.routing import ApiRoute
from todo_api.schemas.webhooks import WebhookCreated, WebhookDeliveryRead, WebhookRead, WebhookWrite
from todo_core.commands import run
from todo_core.ports import WebhookDestinations
from todo_core.use_cases import webhooks as use_cases
from todo_core.webhooks import Delivery, DeliveryState, Webhook

router = APIRouter(
    route_class=ApiRoute,
    prefix="/api/{user_id}",
    tags=["webhooks"],
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)


async def _destinations(request: Request) -> WebhookDestinations:
    checker: WebhookDestinations = request.app.state.container.webhook_destinations()
    return checker


Destinations = Annotated[WebhookDestinations, Depends(_destinations)]


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    responses={201: {"description": "Created"}, **problem_responses(409)},
)
async def create_webhook(
    user_id: UserId,
    body: WebhookWrite,
    uow: Uow,
    clock: CurrentClock,
    settings: CurrentSettings,
    destinations: Destinations,
) -> Response:
    """Register an endpoint: the user's task events (and due reminders) are POSTed to it, signed
    per Standard Webhooks with its `secret`, which this response alone shows. A URL that is not
    http(s), or whose host resolves to a loopback, private, link-local or metadata address, is a
    422."""
    checked = await use_cases.checked_webhook(clock, destinations, user_id, body.url, body.events, body.description)
    webhook = await run(uow, use_cases.create_webhook, checked, at_most=settings.max_webhooks)
    return json_response(
        {**_webhook_view(webhook), "secret": webhook.secret},
        status_code=201,
        headers={"Location": location(user_id, "webhooks", webhook.id)},
    )


@router.get("/webhooks", response_model=list[WebhookRead])
async def list_webhooks(user_id: UserId, reader: Reader) -> Response:
    """The user's endpoints, oldest first, without their secrets, each with whether it is enabled."""
    return json_response([_webhook_view(webhook) for webhook in await use_cases.list_webhooks(reader, user_id)])


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=problem_responses(404))
async def delete_webhook(user_id: UserId, webhook_id: UUID, uow: Uow) -> Response:
    """Delete the endpoint; what was not yet sent to it never will be."""
    await run(uow, use_cases.delete_webhook, user_id, webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[WebhookDeliveryRead],
    responses=problem_responses(404),
)
async def list_webhook_deliveries(user_id: UserId, webhook_id: UUID, reader: Reader) -> Response:
    """The endpoint's latest deliveries (at most 50), newest first."""
    found = await use_cases.list_deliveries(reader, user_id, webhook_id)
    return json_response([_delivery_view(delivery) for delivery in found])


def _webhook_view(webhook: Webhook) -> dict[str, object]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "created_at": webhook.created_at,
        "enabled": webhook.disabled_at is None,
        "disabled_at": webhook.disabled_at,
        "disabled_reason": webhook.disabled_reason,
        "failing_since": webhook.failing_since,
    }


def _delivery_view(delivery: Delivery) -> dict[str, object]:
    return {
        "webhook_id": delivery.message_id,
        "event_type": delivery.event_type,
        "created_at": delivery.created_at,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at if delivery.state == DeliveryState.PENDING else None,
    }
