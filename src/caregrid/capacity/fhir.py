"""FHIR R4 scheduling resources (the IHE ITI scheduling pattern: Schedule, Slot, Appointment):
read, and Slot search for free slots ($find in REST terms); booking is
`POST /api/v1/slots/{id}/hold` and `/book` ($hold, $book)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from caregrid.capacity import service
from caregrid.capacity.models import Appointment, Slot
from caregrid.core.errors import NotFound
from caregrid.core.fhir import CODESYSTEM_BASE, FhirResponse, SearchParam, capability, searchset
from caregrid.core.http import DB, api_router
from caregrid.identity.access import require_resident_access
from caregrid.identity.deps import CurrentActor

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

SLOT_STATUS = {
    "free": "free",
    "held": "busy-tentative",
    "booked": "busy",
    "blocked": "busy-unavailable",
}
APPOINTMENT_STATUS = {
    "booked": "booked",
    "arrived": "arrived",
    "cancelled": "cancelled",
    "noshow": "noshow",
}
Count = Annotated[int, Query(alias="_count", ge=1, le=100)]

capability("Schedule", ["read"], [])
capability(
    "Slot",
    ["read", "search-type"],
    [SearchParam("schedule", "reference", "Schedule/<id>"), SearchParam("status", "token", "free")],
)
capability("Appointment", ["read"], [])


def _pool(pool: str) -> list[dict[str, Any]]:
    return [
        {
            "coding": [
                {
                    "system": f"{CODESYSTEM_BASE}/capacity-pool",
                    "code": pool,
                    "display": "基层预留" if pool == "reserved" else "普通",
                }
            ]
        }
    ]


def slot_to_fhir(free: service.FreeSlot) -> dict[str, Any]:
    s = free.slot
    return {
        "resourceType": "Slot",
        "id": str(s.id),
        "schedule": {"reference": f"Schedule/{s.schedule_id}"},
        "status": SLOT_STATUS[s.status] if s.status != "held" else "busy-tentative",
        "start": s.start_at.isoformat(),
        "end": s.end_at.isoformat(),
        "serviceCategory": _pool(free.effective_pool),
    }


def appointment_to_fhir(a: Appointment, slot: Slot) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": str(a.id),
        "status": APPOINTMENT_STATUS[a.status],
        "serviceCategory": _pool(a.pool),
        "slot": [{"reference": f"Slot/{a.slot_id}"}],
        "start": slot.start_at.isoformat(),
        "end": slot.end_at.isoformat(),
        "created": a.booked_at.isoformat(),
        "participant": [
            {"actor": {"reference": f"Patient/{a.resident_id}"}, "status": "accepted"},
            {"actor": {"reference": f"Location/{a.institution_id}"}, "status": "accepted"},
        ],
    }


@router.get("/Schedule/{sid}", response_class=FhirResponse)
def read_schedule(sid: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    schedule = service.get_schedule(db, int(sid)) if sid.isdigit() else None
    if schedule is None or (actor.role != "admin" and schedule.group_id != actor.group_id):
        raise NotFound("未找到该排班")
    return {
        "resourceType": "Schedule",
        "id": str(schedule.id),
        "active": schedule.active,
        "serviceType": [{"text": schedule.name}],
        "actor": [{"reference": f"Location/{schedule.institution_id}"}],
    }


@router.get("/Slot/{sid}", response_class=FhirResponse)
def read_slot(sid: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    if not sid.isdigit():
        raise NotFound("未找到该号源")
    slot = service.get_slot(db, actor, int(sid))
    return slot_to_fhir(service.FreeSlot(slot, slot.pool, True))


@router.get("/Slot", response_class=FhirResponse)
def search_slots(
    request: Request,
    db: DB,
    actor: CurrentActor,
    schedule: str | None = None,
    count: Count = 50,
) -> dict[str, Any]:
    """Free slots of the caller's group, soonest first (status=free is implied)."""
    free = service.find_slots(db, actor, limit=count if schedule is None else 500)
    if schedule:
        wanted = schedule.rsplit("/", 1)[-1]
        free = [f for f in free if str(f.slot.schedule_id) == wanted][:count]
    resources = [slot_to_fhir(f) for f in free]
    return searchset(request, resources, len(resources), page=1, count=count)


@router.get("/Appointment/{aid}", response_class=FhirResponse)
def read_appointment(aid: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    if not aid.isdigit():
        raise NotFound("未找到该预约")
    appointment = service.get_appointment(db, int(aid))
    if actor.role != "system" and appointment.group_id != actor.group_id:
        raise NotFound("未找到该预约")
    require_resident_access(
        db, actor, appointment.resident_id, action="read", resource="Appointment"
    )
    slot = service.get_slot(db, actor, appointment.slot_id)
    return appointment_to_fhir(appointment, slot)
