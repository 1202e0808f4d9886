"""A route's arguments found by a plan made once per route, instead of FastAPI's generic solver.

FastAPI solves a route's dependencies anew at every request, re-deriving from the annotations
what it could know once (which query parameter is a list, under which names a field is sent):
on the 50-task list that was ~300 of the app's ~770 µs of CPU per request (`python -m
bench.layers`). The plan does the same lookups and the same validation (the same pydantic fields,
FastAPI's own defaults) with everything derived once.

It takes only the valid request's road. Whatever it is not sure to answer as FastAPI would (a
value that fails validation, an unknown or unparsable input, dependency overrides) it hands back,
and FastAPI's handler runs the request from the start and answers it, errors included, as it
always did. A route it cannot plan (cookies, generator or sync dependencies, forms, a response
that FastAPI would serialise) is left to FastAPI entirely.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi._compat import ModelField
from fastapi._compat.shared import field_annotation_is_sequence
from fastapi._compat.v2 import get_cached_model_fields
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_form_models,
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
)
from pydantic import BaseModel
from pydantic_core import PydanticUndefined as Undefined
from starlette.exceptions import HTTPException

#: Said by a plan that leaves the request to FastAPI.
FALL_BACK: Any = object()
_JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})


@dataclass(frozen=True, slots=True)
class _Param:
    """A scalar or list parameter: its field, the names it may be sent under, and whether it
    is a list (read with `getlist`)."""

    field: ModelField
    names: tuple[str, ...]
    many: bool
    location: str

    def value(self, received: Any) -> Any:
        return self._named_value(received)[1]

    def solve(self, received: Any, values: dict[str, Any]) -> Any:
        name, value = self._named_value(received)
        solved, errors = _validate_value_with_model_field(
            field=self.field, value=value, values=values, loc=(self.location, name)
        )
        return FALL_BACK if errors else solved

    def _named_value(self, received: Any) -> tuple[str, Any]:
        """The name the value came under (the first name when none), and the value."""
        name = next((name for name in self.names if name in received), self.names[0])
        value = received.getlist(name) if self.many else received.get(name)
        return name, Undefined if value is None or (self.many and not value) else value


@dataclass(frozen=True, slots=True)
class _QueryModel:
    """A model of query parameters (`Annotated[Model, Query()]`): its fields' names, read as
    FastAPI reads them, validated as one model."""

    field: ModelField
    fields: tuple[_Param, ...]
    names: frozenset[str]

    def solve(self, query: Any) -> Any:
        if not self.names.issuperset(query.keys()):
            return FALL_BACK  # an extra parameter: the model's policy and FastAPI's message
        given = {}
        for param in self.fields:
            value = param.value(query)
            if value is not Undefined:
                given[param.names[0]] = value
        solved, errors = _validate_value_with_model_field(field=self.field, value=given, values={}, loc=("query",))
        return FALL_BACK if errors else solved


@dataclass(slots=True)
class Plan:
    """How to find one dependant's arguments (a route's endpoint, or one of its dependencies)."""

    call: Callable[..., Awaitable[Any]]
    dependencies: list[tuple[str | None, Plan]] = field(default_factory=list)
    request_name: str | None = None
    path: list[_Param] = field(default_factory=list)
    query: list[_Param] = field(default_factory=list)
    query_models: list[_QueryModel] = field(default_factory=list)
    headers: list[_Param] = field(default_factory=list)
    #: The body's one field (not embedded), for routes that take a JSON body.
    body: ModelField | None = None

    async def arguments(self, request: Request, body: Any, cache: dict[Any, Any]) -> dict[str, Any] | None:
        """The keyword arguments of `call`, or None: FastAPI's to solve. Dependencies run first,
        as FastAPI runs them, each once per request; what they raise propagates as it would."""
        values: dict[str, Any] = {}
        for name, plan in self.dependencies:
            if plan.call in cache:
                solved = cache[plan.call]
            else:
                arguments = await plan.arguments(request, body, cache)
                if arguments is None:
                    return None
                solved = cache[plan.call] = await plan.call(**arguments)
            if name is not None:
                values[name] = solved
        for params, source in ((self.path, "path_params"), (self.query, "query_params"), (self.headers, "headers")):
            if not params:
                continue  # the request's headers and query are parsed only when a route reads them
            received = getattr(request, source)
            for param in params:
                solved = param.solve(received, values)
                if solved is FALL_BACK:
                    return None
                values[param.field.name] = solved
        for model in self.query_models:
            solved = model.solve(request.query_params)
            if solved is FALL_BACK:
                return None
            values[model.field.name] = solved
        if self.body is not None:
            solved, errors = _validate_value_with_model_field(field=self.body, value=body, values=values, loc=("body",))
            if errors:
                return None
            values[self.body.name] = solved
        if self.request_name is not None:
            values[self.request_name] = request
        return values


def plan_of(dependant: Dependant, *, embed_body_fields: bool) -> Plan | None:
    """The plan of a route's dependant, or None when it has what only FastAPI's solver does."""
    if embed_body_fields or not _returns_a_response(dependant.call):
        return None
    return _plan(dependant, top=True)


def _plan(dependant: Dependant, *, top: bool = False) -> Plan | None:
    call = dependant.call
    unsupported = (
        dependant.cookie_params,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
        dependant.own_oauth_scopes,
        dependant.concurrency,
        not dependant.use_cache,
        dependant.body_params and not top,
        len(dependant.body_params) > 1,
    )
    if call is None or any(unsupported) or not inspect.iscoroutinefunction(call):
        return None
    plan = Plan(call=call, request_name=dependant.request_param_name)
    for sub in dependant.dependencies:
        sub_plan = _plan(sub)
        if sub_plan is None:
            return None
        plan.dependencies.append((sub.name, sub_plan))
    plan.path = [_param(field, "path") for field in dependant.path_params]
    for field_ in dependant.query_params:
        model = _get_param_model(field_)
        if model is None:
            plan.query.append(_param(field_, "query"))
            continue
        if field_.field_info.annotation is not model:
            return None  # a model inside another type: FastAPI's case
        plan.query_models.append(_query_model(field_))
    for field_ in dependant.header_params:
        if _get_param_model(field_) is not None:
            return None
        plan.headers.append(_param(field_, "header"))
    if dependant.body_params:
        body = dependant.body_params[0]
        if _get_form_models(body) or _is_json_field(body):
            return None
        plan.body = body
    return plan


def _param(field_: ModelField, location: str) -> _Param:
    names = tuple(name for _, name in _get_param_aliases(field_))
    # Path parameters come in a plain dict: one value each.
    annotation = field_.field_info.annotation
    many = location != "path" and not _is_json_field(field_) and field_annotation_is_sequence(annotation)
    return _Param(field_, names, many, location)


def _query_model(field_: ModelField) -> _QueryModel:
    model: type[BaseModel] = field_.field_info.annotation  # type: ignore[assignment]
    fields = tuple(_param(inner, "query") for inner in get_cached_model_fields(model))
    return _QueryModel(field_, fields, frozenset(name for param in fields for name in param.names))


def _returns_a_response(call: Callable[..., Any] | None) -> bool:
    """Whether the endpoint answers with a Response of its own (FastAPI serialises nothing)."""
    if call is None:
        return False
    try:
        returned = inspect.signature(call, eval_str=True).return_annotation
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


async def json_body(request: Request, media_type: str) -> Any:
    """The request's JSON body (Undefined when it has none), read as FastAPI reads it, or
    FALL_BACK for anything FastAPI answers in its own words (malformed JSON, another type)."""
    try:
        raw = await request.body()
    except HTTPException:
        raise
    except Exception as error:  # as FastAPI says it (a 413 is an HTTPException: above)
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from error
    if not raw:
        return Undefined
    if media_type not in _JSON_TYPES:
        return FALL_BACK
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # malformed, not UTF-8, nested too deep
        return FALL_BACK
