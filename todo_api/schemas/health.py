"""The answer of the health checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = Field(None, description="With `unavailable`: what is wrong, and what an operator does")
