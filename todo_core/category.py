"""Categories: a user's named, coloured groups of tasks."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from todo_core.errors import FieldError, ValidationFailed
from todo_core.ids import new_id
from todo_core.text import comparison_key, text_error

NAME_MAX = 50
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class CategoryFields:
    """What a user writes on a category."""

    name: str
    color: str | None = None

    def validated(self) -> CategoryFields:
        """Return the fields trimmed, with the color in lower case.

        :raises ValidationFailed: listing every field that breaks a rule.
        """
        name = self.name.strip()
        errors = [text_error("name", name, min_length=1, max_length=NAME_MAX)]
        if self.color is not None and not _COLOR.fullmatch(self.color):
            errors.append(FieldError("color", "must be a #rrggbb hex color, e.g. #1e90ff"))
        found = [error for error in errors if error]
        if found:
            raise ValidationFailed(found)
        return CategoryFields(name=name, color=self.color.lower() if self.color else None)


@dataclass(frozen=True, slots=True)
class Category:
    """A category owned by one user."""

    id: UUID
    user_id: str
    fields: CategoryFields
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def name_key(self) -> str:
        return comparison_key(self.fields.name)

    @classmethod
    def new(cls, user_id: str, fields: CategoryFields, now: datetime) -> Category:
        return cls(new_id(), user_id, fields, created_at=now, updated_at=now, version=1)

    def with_fields(self, fields: CategoryFields, now: datetime) -> Category:
        return dataclasses.replace(self, fields=fields, updated_at=now, version=self.version + 1)
