"""The route class of every route: it refuses what the route does not declare, and finds a valid
request's arguments by a plan made once (`todo_api.direct_calls`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, _effective_route_context_var
from pydantic import BaseModel

from todo_api.direct_calls import FALL_BACK, json_body, plan_of
from todo_api.problems import problem_response, unsupported_media_type

_JSON = ("application/json",)
_MERGE_PATCH = ("application/merge-patch+json", *_JSON)


class ApiRoute(APIRoute):
    """A route that refuses, before anything else runs:

    - a query parameter it does not declare, with a 422 that names it and those it knows (a
      typo such as `?search=` for `?q=` must not quietly answer the unfiltered list), as an
      unknown body field is;
    - a body not declared as JSON, with a 415 saying what to send (a form or a text body must
      not be read as something it is not); a PATCH body may also be a JSON merge patch.

    Checked once the request is routed: a wrong method is still a 405. The names a route knows
    are those of its declared query parameters (its dependencies' too), read once here.

    Then the route's arguments are found by its plan; a request the plan leaves to FastAPI (any
    invalid one) goes through FastAPI's handler, which answers it as it always has.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        effective = _effective_route_context_var.get()
        route = effective if effective is not None and effective.original_route is self else self
        known = _query_parameter_names(route.dependant)
        accepted = None
        if route.body_field is not None:
            accepted = _MERGE_PATCH if "PATCH" in (self.methods or ()) else _JSON
        plan = plan_of(route.dependant, embed_body_fields=route._embed_body_fields)
        overrides = route.dependency_overrides_provider

        async def checked(request: Request) -> Response:
            query: bytes = request.scope.get("query_string", b"")
            if query:
                unknown = _unknown_parameters(query, known)
                if unknown:
                    return _unknown_parameters_problem(unknown, known)
            media_type = ""
            if accepted is not None:
                headers = request.headers
                has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
                media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
                if has_body and media_type not in accepted:
                    return unsupported_media_type(accepted)
            if plan is None or (overrides is not None and overrides.dependency_overrides):
                return await handler(request)
            body = await json_body(request, media_type) if accepted is not None else None
            arguments = None if body is FALL_BACK else await plan.arguments(request, body, {})
            if arguments is None:
                return await handler(request)
            response: Response = await plan.call(**arguments)
            return response

        return checked


def _query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """The names of the query parameters a route declares: its own and its dependencies', a
    model's (`Annotated[Model, Query()]`) field by field."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending += current.dependencies
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                names.update(info.alias or name for name, info in model.model_fields.items())
            else:
                names.add(field.alias)
    return frozenset(names)


def _unknown_parameters(query: bytes, known: frozenset[str]) -> list[str]:
    """The query's parameter names that are not `known`, each once, in the query's order."""
    names = (name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    return list(dict.fromkeys(name for name in names if name not in known))


def _unknown_parameters_problem(unknown: list[str], known: frozenset[str]) -> Response:
    takes = f"it takes {', '.join(f'`{name}`' for name in sorted(known))}" if known else "it takes none"
    listed = ", ".join(f"`{name}`" for name in unknown)
    noun = "parameter" if len(unknown) == 1 else "parameters"
    detail = f"Unknown query {noun} {listed}: {takes}."
    message = f"is not a query parameter of this route ({takes})"
    errors = [{"field": name, "message": message} for name in unknown]
    return problem_response(422, "validation-error", detail, errors=errors)
