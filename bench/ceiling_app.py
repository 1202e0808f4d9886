"""The ceiling: FastAPI answering the list route from memory, as FastAPI's documentation writes it.

No database, no token check (the Authorization header is sent but ignored): what is left is
the framework, the server and pydantic serializing the same 50 tasks through a response
model. The page comes from the JSON file the harness wrote from the real server's answer
(`BENCH_CEILING_PAGE`), so both send the same payload.

    BENCH_CEILING_PAGE=page.json uvicorn bench.ceiling_app:app --workers 2
"""

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel


class TaskRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None
    priority: Literal["none", "low", "medium", "high"]
    due_at: datetime | None
    remind_at: datetime | None
    recurrence: str | None
    tags: list[str]
    category_id: uuid.UUID | None
    next_occurrence_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


class TaskPage(BaseModel):
    items: list[TaskRead]
    next_cursor: str | None


TASKS = TaskPage.model_validate_json(Path(os.environ["BENCH_CEILING_PAGE"]).read_bytes()).items

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/{user_id}/tasks", response_model=TaskPage)
async def list_tasks(user_id: str, status: str = "all", limit: int = 50):
    return TaskPage(items=TASKS[:limit], next_cursor=None)
