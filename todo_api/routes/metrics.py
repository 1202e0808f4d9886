"""GET /metrics: Prometheus's scrape, left out of the OpenAPI document (it is for the operator's
scraper, not for front ends)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from todo_api.dependencies import AppMetrics, CurrentSettings
from todo_api.middleware import bearer_token
from todo_api.routing import ApiRoute
from todo_core.errors import AuthenticationFailed, CredentialProblem

router = APIRouter(route_class=ApiRoute)


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, metrics: AppMetrics, settings: CurrentSettings) -> Response:
    """Every metric in Prometheus's text format; with TODO_METRICS_TOKEN, for its bearer only.

    :raises AuthenticationFailed: a token is configured and the request does not carry it.
    """
    if settings.metrics_token is not None:
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            raise AuthenticationFailed(CredentialProblem.MISSING)
        expected = settings.metrics_token.get_secret_value().encode()
        if not hmac.compare_digest(token.encode(), expected):
            raise AuthenticationFailed(CredentialProblem.NOT_RECOGNISED)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
