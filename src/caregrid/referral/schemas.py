"""Referral API models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caregrid.core.ids import RefId

Text = Field(default=None, max_length=4000)


class ReferralCreate(BaseModel):
    """A referral from the caller's member. `submit` sends it at once; `slot_id` books a slot
    of the receiving member in the same step."""

    model_config = ConfigDict(extra="forbid")

    resident_id: RefId
    to_institution_id: RefId | None = None
    to_department_id: RefId | None = None
    external_institution: str | None = Field(default=None, max_length=100)
    external_kind: Literal["specialty_alliance", "provincial", "other"] | None = None
    care_type: Literal["outpatient", "inpatient"] = "outpatient"
    diagnosis_code: str | None = Field(default=None, max_length=20)
    diagnosis_name: str | None = Field(default=None, max_length=100)
    reason_text: str | None = Field(default=None, max_length=1000)
    down_category: (
        Literal["acute_recovery", "postoperative_recovery", "critical_stable", "stable_chronic"]
        | None
    ) = None
    stable: bool = True
    summary: str | None = Text
    care_plan: str | None = Text
    parent_id: RefId | None = None
    submit: bool = True
    slot_id: RefId | None = None
    hold_token: str | None = Field(default=None, max_length=40)


class ReferralRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_id: int | None
    direction: str
    status: str
    resident_id: int
    from_institution_id: int
    to_institution_id: int | None
    to_department_id: int | None
    external_institution: str | None
    care_type: str
    diagnosis_code: str | None
    diagnosis_name: str | None
    reason_code: str
    reason_text: str | None
    summary: str | None
    care_plan: str | None
    priority: str
    contracted: bool
    created_at: datetime
    submitted_at: datetime | None
    due_at: datetime | None
    accepted_at: datetime | None
    rejection_reason: str | None
    appointment_id: int | None
    admission_request_id: int | None
    registration_id: int | None
    arrived_at: datetime | None
    arrival_encounter_id: int | None
    completed_at: datetime | None
    feedback: str | None
    escalated_at: datetime | None
    parent_id: int | None
    episode_id: int | None
    team_task_id: int | None


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str | None
    to_status: str
    username: str
    at: datetime
    note: str | None


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class NoteBody(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class FeedbackBody(BaseModel):
    feedback: str = Field(min_length=1, max_length=4000)


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: RefId | None = None
    bed_pool_id: RefId | None = None
    hold_token: str | None = Field(default=None, max_length=40)


class AdviceRequest(BaseModel):
    resident_id: RefId
    diagnosis_code: str | None = Field(default=None, max_length=20)
    reason_text: str | None = Field(default=None, max_length=1000)


class ReasonRead(BaseModel):
    code: str
    text: str
    clause: str


class AdviceRead(BaseModel):
    recommended: bool
    within_catalogue: bool | None
    reasons: list[ReasonRead]
