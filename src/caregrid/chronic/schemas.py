"""Pydantic models of the chronic-care API."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caregrid.core.ids import RefId

Program = Literal["hypertension", "diabetes"]
Mode = Literal["clinic", "home", "phone", "online"]


class EnrolmentCreate(BaseModel):
    resident_id: RefId
    program: Program
    risk_grade: Literal["low", "medium", "high"] = "low"
    enrolled_on: date | None = None
    institution_id: RefId | None = None


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    program: str
    institution_id: int
    enrolled_on: date
    source: str
    risk_grade: str
    status: str


class FollowUpCreate(BaseModel):
    followed_on: date
    mode: Mode = "clinic"
    # Wide bounds here only stop absurd numbers; the physiological ranges are rules (422 with
    # the rule name) in `chronic.rules.validate_reading`.
    sbp: int | None = Field(default=None, ge=0, le=1000)
    dbp: int | None = Field(default=None, ge=0, le=1000)
    fasting_glucose: float | None = Field(default=None, ge=0, le=1000)
    medication: str | None = Field(default=None, max_length=300)
    adherence: Literal["regular", "intermittent", "none"] | None = None
    note: str | None = Field(default=None, max_length=2000)


class FollowUpRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    enrolment_id: int
    resident_id: int
    program: str
    followed_on: date
    mode: str
    sbp: int | None
    dbp: int | None
    fasting_glucose: float | None
    medication: str | None
    controlled: bool
    action: str
    clause: str
    next_due: date


class FollowUpResult(FollowUpRead):
    action_label: str


class LongPrescriptionCreate(BaseModel):
    drug_name: str = Field(min_length=1, max_length=100)
    drug_class: str = Field(min_length=1, max_length=30)
    weeks: int = Field(ge=1, le=52, description="处方周数（规则：最长 12 周）")
    assessment_note: str | None = Field(default=None, max_length=500)
    prescribed_on: date | None = None


class LongPrescriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    enrolment_id: int
    resident_id: int
    drug_name: str
    drug_class: str
    weeks: int
    assessment_note: str | None
    prescribed_on: date


class ProgramRead(BaseModel):
    enrolment: EnrolmentRead
    followups: list[FollowUpRead]
