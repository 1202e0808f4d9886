"""The naive baseline: what a developer would write from the FastAPI and SQLModel tutorials.

A sync SQLModel `Session` per request (`Depends(get_session)`), offset pagination, SQLModel
response models, and a PyJWT check of the bearer token on every request (HS256, the same
secret as the real server). It maps the real server's `tasks` table, so it reads the same
rows; a create fills every NOT NULL column (but, like most such apps, keeps tags only in the
JSON column: it knows nothing of `task_tags`, nor of the change numbers of sync: its rows get
change number 0, the time zone UTC and one position for all).

    BENCH_NAIVE_DATABASE_URL=postgresql+psycopg://... BENCH_JWT_SECRET=... \\
        uvicorn bench.naive_app:app --workers 2
"""

import os
import uuid
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, Session, SQLModel, create_engine, select

engine = create_engine(os.environ["BENCH_NAIVE_DATABASE_URL"])
SECRET = os.environ["BENCH_JWT_SECRET"]
PRIORITIES = {"none": 0, "low": 1, "medium": 2, "high": 3}


class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    user_id: str = Field(primary_key=True, max_length=255)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(max_length=200)
    title_key: str
    description: str = ""
    completed: bool = False
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    priority: int = 0
    due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    remind_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    recurrence: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    category_id: uuid.UUID | None = None
    next_occurrence_id: uuid.UUID | None = None
    time_zone: str = "UTC"
    position: str = "a0"
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    version: int = 1
    change_seq: int = 0


class TaskPublic(SQLModel):
    id: uuid.UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None
    priority: int
    due_at: datetime | None
    remind_at: datetime | None
    recurrence: str | None
    tags: list[str]
    category_id: uuid.UUID | None
    next_occurrence_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


class TaskCreate(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    priority: str = "none"
    due_at: datetime | None = None
    tags: list[str] = []


class TaskCompletion(SQLModel):
    completed: bool


def get_session():
    with Session(engine) as session:
        yield session


def get_current_user(user_id: str, authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="Not authenticated")
    try:
        payload = jwt.decode(authorization.removeprefix("Bearer "), SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError as error:
        raise HTTPException(status_code=401, detail="Invalid token") from error
    if payload.get("sub") != user_id:
        raise HTTPException(status_code=403, detail="Forbidden")
    return user_id


SessionDep = Annotated[Session, Depends(get_session)]
CurrentUser = Annotated[str, Depends(get_current_user)]

app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/api/{user_id}/tasks", response_model=list[TaskPublic])
def list_tasks(
    owner: CurrentUser,
    session: SessionDep,
    status: str = "all",
    offset: int = 0,
    limit: Annotated[int, Query(le=200)] = 50,
):
    statement = select(Task).where(Task.user_id == owner)
    if status == "pending":
        statement = statement.where(Task.completed == False)  # noqa: E712
    elif status == "completed":
        statement = statement.where(Task.completed == True)  # noqa: E712
    tasks = session.exec(statement.order_by(Task.created_at, Task.id).offset(offset).limit(limit)).all()
    return tasks


@app.post("/api/{user_id}/tasks", response_model=TaskPublic, status_code=201)
def create_task(owner: CurrentUser, task_in: TaskCreate, session: SessionDep):
    now = datetime.now(UTC)
    task = Task(
        user_id=owner,
        title=task_in.title,
        title_key=task_in.title.casefold(),
        description=task_in.description,
        priority=PRIORITIES.get(task_in.priority, 0),
        due_at=task_in.due_at,
        tags=task_in.tags,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.commit()
    session.refresh(task)
    return task


@app.get("/api/{user_id}/tasks/{task_id}", response_model=TaskPublic)
def read_task(owner: CurrentUser, task_id: uuid.UUID, session: SessionDep):
    task = session.get(Task, (owner, task_id))
    if not task:
        raise HTTPException(status_code=404, detail="Task not found")
    return task


@app.patch("/api/{user_id}/tasks/{task_id}/complete", response_model=TaskPublic)
def complete_task(owner: CurrentUser, task_id: uuid.UUID, completion: TaskCompletion, session: SessionDep):
    task = session.get(Task, (owner, task_id))
    if not task:
        raise HTTPException(status_code=404, detail="Task not found")
    if task.completed != completion.completed:
        now = datetime.now(UTC)
        task.completed = completion.completed
        task.completed_at = now if completion.completed else None
        task.updated_at = now
        task.version += 1
        session.add(task)
        session.commit()
        session.refresh(task)
    return task
