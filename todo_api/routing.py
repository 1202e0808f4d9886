"""Routes whose body must be declared as JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from todo_api.problems import unsupported_media_type

_JSON = ("application/json",)
_MERGE_PATCH = ("application/merge-patch+json", *_JSON)


class JsonBodyRoute(APIRoute):
    """A route that refuses a body not declared as JSON with 415, saying what to send (a form
    or a text body must not be read as something it is not); a PATCH body may also be a JSON
    merge patch. Checked once the request is routed: a wrong method is still a 405."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        accepted = _MERGE_PATCH if "PATCH" in (self.methods or ()) else _JSON

        async def checked(request: Request) -> Response:
            headers = request.headers
            has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if has_body and media_type not in accepted:
                return unsupported_media_type(accepted)
            return await handler(request)

        return checked
