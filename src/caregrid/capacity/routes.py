"""Capacity REST API under /api/v1: schedules, slots ($find, $hold, $book), appointments,
release of reserved slots. Thin endpoints calling `capacity.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from caregrid.capacity import service
from caregrid.capacity.schemas import (
    AppointmentRead,
    BookBody,
    HoldRead,
    ReleaseRead,
    ScheduleCreate,
    ScheduleRead,
    SlotRead,
    SlotsPublish,
)
from caregrid.core.errors import NotFound
from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath, OptionalIdQuery
from caregrid.identity.deps import CurrentActor

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    403: {"description": "当前角色无权执行此操作（或下沉预留号源仅限基层）"},
    404: {"description": "不存在（或无权查看）"},
    409: {"description": "号源已被预约或锁定"},
    422: {"description": "输入有误，响应中 field 指明字段"},
}

router = api_router(
    prefix="/api/v1", tags=["capacity"], responses={401: {"description": "未登录或登录已过期"}}
)


def slot_read(free: service.FreeSlot) -> SlotRead:
    s = free.slot
    return SlotRead(
        id=s.id,
        schedule_id=s.schedule_id,
        institution_id=s.institution_id,
        department_id=s.department_id,
        start_at=s.start_at,
        end_at=s.end_at,
        status=s.status,
        pool=free.effective_pool,
        bookable=free.bookable,
    )


@router.post("/schedules", response_model=ScheduleRead, status_code=201, responses=ERRORS)
def create_schedule(data: ScheduleCreate, db: DB, actor: CurrentActor) -> Any:
    return service.create_schedule(db, actor, **data.model_dump())


@router.post(
    "/schedules/{schedule_id}/slots",
    response_model=list[SlotRead],
    status_code=201,
    responses=ERRORS,
)
def publish_slots(schedule_id: IdInPath, data: SlotsPublish, db: DB, actor: CurrentActor) -> Any:
    """Open slots; the profile's reserved share is set aside for primary care."""
    slots = service.publish_slots(db, actor, schedule_id, starts=data.starts, minutes=data.minutes)
    return [slot_read(service.FreeSlot(s, s.pool, True)) for s in slots]


@router.get("/slots", response_model=list[SlotRead], responses=ERRORS)
def find_slots(
    db: DB,
    actor: CurrentActor,
    institution_id: OptionalIdQuery = None,
    department_id: OptionalIdQuery = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Free slots ($find), with whether each is in the reserved share and bookable by you."""
    return [
        slot_read(f)
        for f in service.find_slots(
            db,
            actor,
            institution_id=institution_id,
            department_id=department_id,
            since=since,
            until=until,
            limit=limit,
        )
    ]


@router.post("/slots/{slot_id}/hold", response_model=HoldRead, responses=ERRORS)
def hold_slot(slot_id: IdInPath, db: DB, actor: CurrentActor) -> HoldRead:
    """Keep the slot for you for a few minutes ($hold)."""
    slot, token = service.hold_slot(db, actor, slot_id)
    assert slot.held_until is not None
    hold = HoldRead(slot_id=slot.id, hold_token=token, held_until=slot.held_until)
    return hold


@router.post(
    "/slots/{slot_id}/book", response_model=AppointmentRead, status_code=201, responses=ERRORS
)
def book_slot(slot_id: IdInPath, data: BookBody, db: DB, actor: CurrentActor) -> Any:
    """Book the slot for a resident ($book). A slot taken meanwhile is a 409."""
    appointment = service.book_slot(
        db, actor, slot_id=slot_id, resident_id=data.resident_id, hold_token=data.hold_token
    )
    return appointment


@router.post(
    "/appointments/{appointment_id}/cancel", response_model=AppointmentRead, responses=ERRORS
)
def cancel_appointment(appointment_id: IdInPath, db: DB, actor: CurrentActor) -> Any:
    appointment = service.get_appointment(db, appointment_id)
    if actor.role != "admin" and appointment.group_id != actor.group_id:
        raise NotFound("未找到该预约", appointment_id=appointment_id)
    return service.cancel_appointment(db, actor, appointment_id)


@router.post("/slots/release-reserved", response_model=ReleaseRead, responses=ERRORS)
def release_reserved(db: DB, actor: CurrentActor) -> ReleaseRead:
    """Release unused reserved slots whose release lead time has come (coordinators)."""
    return ReleaseRead(released=service.release_reserved(db, actor))
