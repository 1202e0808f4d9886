"""What an MCP client reads before it calls /mcp: the protected resource's metadata (RFC 9728),
which the 401 of /mcp points at (`WWW-Authenticate: Bearer resource_metadata="…"`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from todo_api.dependencies import CurrentSettings
from todo_api.middleware import MCP_PATH, RESOURCE_METADATA_PATH
from todo_api.representation import json_response, public_base_of

router = APIRouter(tags=["assistant"])


@router.get(RESOURCE_METADATA_PATH, include_in_schema=False)
@router.get(RESOURCE_METADATA_PATH + MCP_PATH, include_in_schema=False)
async def get_protected_resource_metadata(request: Request, settings: CurrentSettings) -> Response:
    """The resource (this service; for the path-suffixed form, its /mcp), the authorization server
    that issues its tokens (the Better Auth issuer, with a JWKS), and that tokens go in the
    `Authorization` header."""
    base = public_base_of(request.scope, settings.public_url)
    resource = base + MCP_PATH if request.url.path.endswith(MCP_PATH) else base
    document: dict[str, object] = {"resource": resource, "bearer_methods_supported": ["header"]}
    if settings.jwks_url and settings.jwt_issuer:
        document["authorization_servers"] = [settings.jwt_issuer]
    document["resource_name"] = "todo"
    return json_response(document)
