"""Capacity API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from caregrid.core.ids import RefId


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution_id: RefId
    department_id: RefId
    name: str = Field(min_length=1, max_length=60)
    registration_fee_fen: int = Field(default=0, ge=0, le=10_000_000)


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    institution_id: int
    department_id: int
    name: str
    registration_fee_fen: int


class SlotsPublish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts: list[datetime] = Field(min_length=1, max_length=500)
    minutes: int = Field(default=15, ge=1, le=480)


class SlotRead(BaseModel):
    id: int
    schedule_id: int
    institution_id: int
    department_id: int
    start_at: datetime
    end_at: datetime
    status: str
    pool: str
    bookable: bool


class HoldRead(BaseModel):
    slot_id: int
    hold_token: str
    held_until: datetime


class BookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resident_id: RefId
    hold_token: str | None = Field(default=None, max_length=40)


class AppointmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slot_id: int
    resident_id: int
    institution_id: int
    pool: str
    status: str
    registration_id: int | None
    via_referral: bool
    booked_at: datetime


class ReleaseRead(BaseModel):
    released: int
