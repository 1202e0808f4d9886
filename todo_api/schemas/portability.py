"""Export and import: one document, the same schema both ways (`todo_core.portability`)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from todo_api.schemas.categories import CategoryWrite
from todo_api.schemas.common import RequestBody, Rfc3339
from todo_api.schemas.tasks import TaskWrite
from todo_api.schemas.user_settings import SettingsWrite

_IN_THE_DOCUMENT = "The id of {what} in this document (an import gives everything new ids)"


class ExportedCategory(CategoryWrite):
    """A category in an export document."""

    id: UUID = Field(description="Its id in the exporting account; what tasks' `category_id` name")
    created_at: Rfc3339 | None = Field(None, description="Kept on import; absent: the time of the import")
    updated_at: Rfc3339 | None = Field(None, description="Not imported (an import is a change)")


class ExportedTask(TaskWrite):
    """A task in an export document: what a user writes on it, its completion, its links."""

    id: UUID = Field(description="Its id in the exporting account; what other tasks' links name")
    category_id: UUID | None = Field(None, description=_IN_THE_DOCUMENT.format(what="one of the document's categories"))
    parent_id: UUID | None = Field(
        None,
        description=_IN_THE_DOCUMENT.format(what="the task this one is a step of")
        + "; at most 4 ancestors. The order of siblings in the document is their order",
    )
    completed_at: Rfc3339 | None = Field(
        None, description="When it was completed (kept on import); null on an open task; absent: the time of the import"
    )
    created_at: Rfc3339 | None = Field(None, description="Kept on import; absent: the time of the import")
    updated_at: Rfc3339 | None = Field(None, description="Not imported (an import is a change)")
    next_occurrence_id: UUID | None = Field(
        None,
        description=_IN_THE_DOCUMENT.format(what="the task that follows this completed repeating task")
        + ": completing it again makes no second one",
    )


class AccountDocument(RequestBody):
    """All of a user's data: `GET /export` writes it, `POST /import` reads it. Tasks come in
    structure order: the top-level tasks, then their steps, and so on (a parent always before
    its steps), siblings in the user's order."""

    # One schema for both directions: the document a client reads is the one it sends back.
    model_config = ConfigDict(extra="forbid", json_schema_mode_override="validation")

    format: Literal["todo-export"] = Field(description="Always `todo-export`")
    version: Literal[1] = Field(description="The version of the format: 1")
    exported_at: Rfc3339 | None = Field(None, description="When it was exported; not imported")
    settings: SettingsWrite | None = Field(None, description="On import, replace the account's; absent: kept")
    categories: list[ExportedCategory] = Field(
        default_factory=list, description="On import, one named as one of the account's (in any case) is merged into it"
    )
    tasks: list[ExportedTask] = Field(default_factory=list)


class ImportedIds(BaseModel):
    categories: dict[str, UUID] = Field(description="Each category id of the document, and the account's id for it")
    tasks: dict[str, UUID] = Field(description="Each task id of the document, and the new task's id")


class ImportResult(BaseModel):
    """What an import made."""

    categories: int = Field(description="Categories created")
    merged_categories: int = Field(description="Categories of the document merged into the account's of that name")
    tasks: int = Field(description="Tasks created")
    ids: ImportedIds
