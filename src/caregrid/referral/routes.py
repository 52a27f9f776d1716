"""Referral REST API under /api/v1. Thin endpoints calling `referral.service`."""

from __future__ import annotations

from typing import Any

from caregrid.core.errors import Forbidden, Invalid
from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath
from caregrid.identity.deps import CurrentActor
from caregrid.referral import monitoring, service
from caregrid.referral.schemas import (
    AdviceRead,
    AdviceRequest,
    EventRead,
    FeedbackBody,
    NoteBody,
    ReasonRead,
    ReferralCreate,
    ReferralRead,
    RejectBody,
    ScheduleBody,
)

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    403: {"description": "当前角色无权执行此操作"},
    404: {"description": "不存在（或无诊疗关系）"},
    409: {"description": "当前状态不允许该操作"},
    422: {"description": "输入有误，响应中 field 指明字段"},
}

router = api_router(
    prefix="/api/v1", tags=["referral"], responses={401: {"description": "未登录或登录已过期"}}
)


@router.post("/referrals/advice", response_model=AdviceRead, responses=ERRORS)
def advice(data: AdviceRequest, db: DB, actor: CurrentActor) -> AdviceRead:
    """Whether the case should be referred up, and why (catalogue, follow-up triggers,
    emergency thresholds, the doctor's reason)."""
    result = service.advice_for(
        db,
        actor,
        resident_id=data.resident_id,
        diagnosis_code=data.diagnosis_code,
        doctor_reason=data.reason_text,
    )
    return AdviceRead(
        recommended=result.recommended,
        within_catalogue=result.within_catalogue,
        reasons=[ReasonRead(code=r.code, text=r.text, clause=r.clause) for r in result.reasons],
    )


@router.post("/referrals", response_model=ReferralRead, status_code=201, responses=ERRORS)
def create(data: ReferralCreate, db: DB, actor: CurrentActor) -> Any:
    """Create a referral; by default submitted at once, booking `slot_id` in the same step."""
    return service.create_referral(db, actor, data)


@router.get("/referrals/incoming", response_model=list[ReferralRead])
def incoming(db: DB, actor: CurrentActor) -> Any:
    return service.incoming(db, actor)


@router.get("/referrals/outgoing", response_model=list[ReferralRead])
def outgoing(db: DB, actor: CurrentActor) -> Any:
    return service.outgoing(db, actor)


@router.get("/referrals/monitoring", responses=ERRORS)
def monitoring_summary(db: DB, actor: CurrentActor) -> dict[str, Any]:
    """Counts, shares, time to accept, closed-loop rate and reserved capacity use for the
    caller's group (coordinators and managers)."""
    return monitoring.summary(db, actor).as_dict()


@router.get("/referrals/{referral_id}", response_model=ReferralRead, responses=ERRORS)
def read(referral_id: IdInPath, db: DB, actor: CurrentActor) -> Any:
    return service.get_referral(db, actor, referral_id)


@router.get("/referrals/{referral_id}/history", response_model=list[EventRead], responses=ERRORS)
def read_history(referral_id: IdInPath, db: DB, actor: CurrentActor) -> Any:
    return service.history(db, actor, referral_id)


@router.post("/referrals/{referral_id}/submit", response_model=ReferralRead, responses=ERRORS)
def submit(referral_id: IdInPath, db: DB, actor: CurrentActor) -> Any:
    return service.submit(db, actor, referral_id)


@router.post("/referrals/{referral_id}/accept", response_model=ReferralRead, responses=ERRORS)
def accept(referral_id: IdInPath, db: DB, actor: CurrentActor, data: NoteBody | None = None) -> Any:
    return service.accept(db, actor, referral_id, data.note if data else None)


@router.post("/referrals/{referral_id}/reject", response_model=ReferralRead, responses=ERRORS)
def reject(referral_id: IdInPath, data: RejectBody, db: DB, actor: CurrentActor) -> Any:
    return service.reject(db, actor, referral_id, data.reason)


@router.post("/referrals/{referral_id}/schedule", response_model=ReferralRead, responses=ERRORS)
def schedule(referral_id: IdInPath, data: ScheduleBody, db: DB, actor: CurrentActor) -> Any:
    """Book a slot (outpatient) or queue for a bed (inpatient) for the referral."""
    if data.slot_id is not None:
        referral = service.schedule_slot(
            db, actor, referral_id, data.slot_id, hold_token=data.hold_token
        )
        return referral
    if data.bed_pool_id is not None:
        return service.schedule_bed(db, actor, referral_id, data.bed_pool_id)
    raise Invalid("请指定号源或病区", field="slot_id")


@router.post("/referrals/{referral_id}/arrive", response_model=ReferralRead, responses=ERRORS)
def arrive(referral_id: IdInPath, db: DB, actor: CurrentActor) -> Any:
    return service.arrive(db, actor, referral_id)


@router.post("/referrals/{referral_id}/complete", response_model=ReferralRead, responses=ERRORS)
def complete(referral_id: IdInPath, data: FeedbackBody, db: DB, actor: CurrentActor) -> Any:
    return service.complete(db, actor, referral_id, data.feedback)


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralRead, responses=ERRORS)
def cancel(referral_id: IdInPath, db: DB, actor: CurrentActor, data: NoteBody | None = None) -> Any:
    return service.cancel(db, actor, referral_id, data.note if data else None)


@router.post("/referrals/expire-overdue", responses=ERRORS)
def expire_overdue(db: DB, actor: CurrentActor) -> dict[str, int]:
    """Expire unanswered referrals past the time limit and escalate them (coordinators)."""
    if actor.role != "coordinator":
        raise Forbidden("仅转诊协调员可以处理超时转诊")
    return {"expired": service.expire_overdue(db, actor)}
