"""Schemas of the auth API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class Me(BaseModel):
    id: int | None
    username: str
    display_name: str
    role: str
    role_label: str
    institution_id: int | None
    group_id: int | None
    practitioner_id: int | None
