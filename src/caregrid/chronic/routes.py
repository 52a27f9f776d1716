"""Chronic-care REST API under /api/v1: enrol, record follow-ups (with the rules engine's
decision), long prescriptions, a resident's programmes. Thin endpoints over `chronic.service`."""

from __future__ import annotations

from typing import Any

from caregrid.chronic import rules
from caregrid.chronic import service as chronic
from caregrid.chronic.schemas import (
    EnrolmentCreate,
    EnrolmentRead,
    FollowUpCreate,
    FollowUpRead,
    FollowUpResult,
    LongPrescriptionCreate,
    LongPrescriptionRead,
    ProgramRead,
)
from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath
from caregrid.identity.deps import CurrentActor

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    403: {"description": "当前角色无权执行此操作"},
    404: {"description": "不存在（或无诊疗关系）"},
    409: {"description": "与现有状态冲突（如已在管理中）"},
    422: {"description": "输入违反规则，响应中 field 与 rule 指明字段和规则"},
}

router = api_router(
    prefix="/api/v1/chronic",
    tags=["chronic"],
    responses={401: {"description": "未登录或登录已过期"}},
)


@router.post("/enrolments", response_model=EnrolmentRead, status_code=201, responses=ERRORS)
def enrol(data: EnrolmentCreate, db: DB, actor: CurrentActor) -> EnrolmentRead:
    """Put a resident aged 35+ in the hypertension or type-2 diabetes registry."""
    enrolment = chronic.enrol(
        db,
        actor,
        resident_id=data.resident_id,
        program=data.program,
        risk_grade=data.risk_grade,
        enrolled_on=data.enrolled_on,
        institution_id=data.institution_id,
    )
    return EnrolmentRead.model_validate(enrolment)


@router.post(
    "/enrolments/{enrolment_id}/followups",
    response_model=FollowUpResult,
    status_code=201,
    responses=ERRORS,
)
def record_followup(
    enrolment_id: IdInPath, data: FollowUpCreate, db: DB, actor: CurrentActor
) -> FollowUpResult:
    """Record a follow-up; the response carries the next action and the clause behind it."""
    followup, decision = chronic.record_followup(
        db, actor, enrolment_id=enrolment_id, **data.model_dump()
    )
    return FollowUpResult(
        **FollowUpRead.model_validate(followup).model_dump(),
        action_label=rules.ACTION_LABELS[decision.action],
    )


@router.post(
    "/enrolments/{enrolment_id}/long-prescriptions",
    response_model=LongPrescriptionRead,
    status_code=201,
    responses=ERRORS,
)
def prescribe_long(
    enrolment_id: IdInPath, data: LongPrescriptionCreate, db: DB, actor: CurrentActor
) -> LongPrescriptionRead:
    """A long prescription: ≤ 12 weeks, > 4 weeks only with an assessment note for a stable
    patient, excluded drug classes refused (长期处方管理规范（试行）2021)."""
    rx = chronic.prescribe_long(db, actor, enrolment_id=enrolment_id, **data.model_dump())
    return LongPrescriptionRead.model_validate(rx)


@router.get("/residents/{resident_id}/programs", response_model=list[ProgramRead], responses=ERRORS)
def resident_programs(resident_id: IdInPath, db: DB, actor: CurrentActor) -> list[ProgramRead]:
    return [
        ProgramRead(
            enrolment=EnrolmentRead.model_validate(e),
            followups=[FollowUpRead.model_validate(f) for f in fs],
        )
        for e, fs in chronic.resident_programs(db, actor, resident_id)
    ]
