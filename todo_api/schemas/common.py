"""What the models of every resource share: strict date and date-time types, the base of a
request body, and the merge patch of a model."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

# An offset such as +02:00 that arrived unencoded in a query string: `+` reads as a space.
_UNENCODED_PLUS = re.compile(r"\d[ ]\d{2}:?\d{2}$")


def _rfc3339_text(value: object) -> object:
    # pydantic would also read 1700000000 or "1700000000" as a Unix time: not RFC 3339.
    if isinstance(value, str) and _UNENCODED_PLUS.search(value):
        raise PydanticCustomError(
            "rfc3339", "has a space where its offset's `+` should be: URL-encode `+` as %2B in a query string"
        )
    if not isinstance(value, str) or value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raise PydanticCustomError("rfc3339", "must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


_CALENDAR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _calendar_date_text(value: object) -> object:
    # pydantic would also read a date-time at midnight, or a Unix time, as a date.
    if not isinstance(value, str) or not _CALENDAR_DATE.fullmatch(value):
        raise PydanticCustomError("calendar_date", "must be a calendar date like 2026-12-04 (YYYY-MM-DD)")
    return value


CalendarDate = Annotated[date, BeforeValidator(_calendar_date_text)]


class RequestBody(BaseModel):
    """A request body: a field the schema does not know is a 422 that names it (a typo must
    not pass unnoticed)."""

    model_config = ConfigDict(extra="forbid")


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339_text)]


def merge_patch_of(model: type[BaseModel]) -> type[BaseModel]:
    """The JSON merge patch of `model`: every field optional (absent: unchanged), with the same
    types, limits and documentation; a field with a default is nullable (null: back to the
    default), a required one is not (it cannot be cleared)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        if not info.is_required():
            annotation = annotation | None
        documented = Field(
            None, description=info.description, examples=info.examples, json_schema_extra=info.json_schema_extra
        )
        fields[name] = (annotation, documented)
    patch: type[BaseModel] = create_model(f"{model.__name__}Patch", __base__=RequestBody, **fields)
    return patch
