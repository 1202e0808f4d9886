"""The ceiling: FastAPI answering the list route from memory, as FastAPI's documentation writes it.

No database, no token check (the Authorization header is sent but ignored): what is left is
the framework, the server and pydantic serializing the same 50 tasks through a response
model. The page (a JSON array) comes from the JSON file the harness wrote from the real
server's answer (`BENCH_CEILING_PAGE`), with its `Link` header (`BENCH_CEILING_LINK`), so both
send the same page: the harness compares the two answers byte for byte before it measures.
Instants are kept as the text the real page has (RFC 3339 with `+00:00` and a trimmed
fraction, which pydantic would write otherwise); ids, dates and the rest are typed.

    BENCH_CEILING_PAGE=page.json BENCH_CEILING_LINK='<…>; rel="next"' uvicorn bench.ceiling_app:app --workers 2
"""

import os
import uuid
from datetime import date
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Response
from pydantic import BaseModel, TypeAdapter


class TaskRead(BaseModel):
    id: uuid.UUID
    user_id: str
    title: str
    description: str
    completed: bool
    priority: Literal["none", "low", "medium", "high"]
    due_at: str | None
    due_date: date | None
    remind_at: str | None
    recurrence: str | None
    time_zone: str
    tags: list[str]
    category_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    completed_at: str | None
    created_at: str
    updated_at: str
    version: int
    next_occurrence_id: uuid.UUID | None
    position: str


TASKS = TypeAdapter(list[TaskRead]).validate_json(Path(os.environ["BENCH_CEILING_PAGE"]).read_bytes())
LINK = os.environ.get("BENCH_CEILING_LINK", "")

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/{user_id}/tasks", response_model=list[TaskRead])
async def list_tasks(response: Response, user_id: str, status: str = "all", limit: int = 50):
    if LINK:
        response.headers["Link"] = LINK
    return TASKS[:limit]
