"""FHIR R4 scheduling resources: Schedule, Slot and Appointment read, Slot search, and the
IHE ITI Scheduling operations on Appointment (ITI-115 `$find`, ITI-116 `$hold`, ITI-117
`$book`), which call the same `capacity.service` functions as `/api/v1/slots`.

A proposed or held appointment is not stored: its id is ``slot-<slot id>`` and it references
its Slot. `$hold` answers it with status ``pending``, the hold token as an identifier and the
hold's expiry as an extension; `$book` takes that appointment back (token and patient in it)
and answers the booked Appointment, stored, with its numeric id. Reserved slots are only
proposed to, held and booked for primary members and family-doctor teams (001 §三(三)1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Query, Request
from sqlalchemy.orm import Session

from caregrid.capacity import service
from caregrid.capacity.models import Appointment, Slot
from caregrid.core.actor import Actor
from caregrid.core.errors import Invalid, NotFound
from caregrid.core.fhir import (
    CODESYSTEM_BASE,
    FhirResponse,
    SearchParam,
    base_url,
    capability,
    parameters_of,
    reference_id,
    searchset,
    split_token,
)
from caregrid.core.http import DB, api_router
from caregrid.identity.access import require_resident_access
from caregrid.identity.deps import CurrentActor
from caregrid.registry import service as registry

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
IHE_OPERATIONS = "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition"
capability(
    "Appointment",
    ["read"],
    [],
    [(op, f"{IHE_OPERATIONS}/appointment-{op}") for op in ("find", "hold", "book")],
)
POOL_SYSTEM = f"{CODESYSTEM_BASE}/capacity-pool"
DEPARTMENT_SYSTEM = f"{CODESYSTEM_BASE}/department"
HOLD_TOKEN_SYSTEM = "https://caregrid.org/fhir/sid/hold-token"
HOLD_EXPIRES_URL = "https://caregrid.org/fhir/StructureDefinition/hold-expires"
PROPOSED_PREFIX = "slot-"


def _pool(pool: str) -> list[dict[str, Any]]:
    return [
        {
            "coding": [
                {
                    "system": POOL_SYSTEM,
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


# --- IHE ITI Scheduling operations: $find, $hold, $book -----------------------------------------

FhirBody = Annotated[dict[str, Any], Body(media_type="application/fhir+json")]


def _one(params: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any] | None:
    found = params.get(name) or []
    if len(found) > 1:
        raise Invalid(f"参数 {name} 只能出现一次", field=name)
    return found[0] if found else None


def _datetime(params: dict[str, list[dict[str, Any]]], name: str) -> datetime | None:
    entry = _one(params, name)
    if entry is None:
        return None
    value = entry.get("valueDateTime") or entry.get("valueDate") or entry.get("valueString")
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise Invalid(f"参数 {name} 须为日期时间（ISO 8601）", field=name) from exc


def _strings(params: dict[str, list[dict[str, Any]]], name: str) -> list[str]:
    values = []
    for entry in params.get(name) or []:
        value = entry.get("valueString") or entry.get("valueCode") or entry.get("valueToken")
        if not isinstance(value, str) or not value:
            raise Invalid(f"参数 {name} 须为字符串", field=name)
        values.append(value)
    return values


def _references(params: dict[str, list[dict[str, Any]]], name: str, type_: str) -> list[int]:
    ids = []
    for entry in params.get(name) or []:
        ref = (entry.get("valueReference") or {}).get("reference") or entry.get("valueString")
        rid = reference_id(str(ref or ""), type_)
        if not rid.isdigit():
            raise Invalid(f"参数 {name} 须引用 {type_}/<id>", field=name)
        ids.append(int(rid))
    return ids


def _specialty_departments(session: Session, actor: Actor, values: list[str]) -> set[int] | None:
    """`specialty` tokens: `<department system>|<id>` or a department's name (心血管内科), any
    of the caller's group's hospitals."""
    if not values:
        return None
    wanted: set[int] = set()
    names: set[str] = set()
    for value in values:
        system, code = split_token(value)
        if system == DEPARTMENT_SYSTEM or (system is None and code.isdigit()):
            if not code.isdigit():
                raise Invalid("specialty 的科室编码须为数字", field="specialty")
            wanted.add(int(code))
        else:
            names.add(code)
    if names:
        wanted |= registry.department_ids_named(session, names, group_id=actor.group_id)
    return wanted


def _pool_filter(values: list[str]) -> str | None:
    pools = set()
    for value in values:
        system, code = split_token(value)
        if system not in (None, POOL_SYSTEM) or code not in ("reserved", "general"):
            raise Invalid(
                f"service-category 须为 {POOL_SYSTEM}|reserved 或 |general",
                field="service-category",
            )
        pools.add(code)
    return pools.pop() if len(pools) == 1 else None


def _proposed(
    free: service.FreeSlot, departments: dict[int, str], patient_id: int | None
) -> dict[str, Any]:
    s = free.slot
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Location/{s.institution_id}"}, "status": "accepted"}
    ]
    if patient_id is not None:
        participants.append(
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "needs-action"}
        )
    return {
        "resourceType": "Appointment",
        "id": f"{PROPOSED_PREFIX}{s.id}",
        "status": "proposed",
        "serviceCategory": _pool(free.effective_pool),
        "specialty": [
            {
                "coding": [
                    {
                        "system": DEPARTMENT_SYSTEM,
                        "code": str(s.department_id),
                        "display": departments.get(s.department_id, ""),
                    }
                ]
            }
        ],
        "slot": [{"reference": f"Slot/{s.id}"}],
        "start": s.start_at.isoformat(),
        "end": s.end_at.isoformat(),
        "participant": participants,
    }


def _bundle(request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The operations' answer: a searchset Bundle of Appointments (IHE ihe-sched-avail-bundle)."""
    base = base_url(request)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{base}/Appointment/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def find_appointments(
    request: Request, db: Session, actor: Actor, params: dict[str, list[dict[str, Any]]]
) -> FhirResponse:
    start, end = _datetime(params, "start"), _datetime(params, "end")
    if start and end and end <= start:
        raise Invalid("end 须晚于 start", field="end")
    count_entry = _one(params, "_count")
    count = 50
    if count_entry is not None:
        raw = str(count_entry.get("valueInteger", count_entry.get("valueString")))
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            raise Invalid("_count 须为 1 到 500 之间的整数", field="_count")
        count = int(raw)
    institutions = _references(params, "organization", "Organization") + _references(
        params, "location-reference", "Location"
    )
    patients = _references(params, "patient-reference", "Patient")
    if len(patients) > 1:
        raise Invalid("暂不支持多人预约", field="patient-reference")
    patient_id = patients[0] if patients else None
    if patient_id is not None:
        require_resident_access(db, actor, patient_id, action="read", resource="Appointment")
    free = service.find_slots(
        db,
        actor,
        since=start,
        until=end,
        limit=count,
        department_ids=_specialty_departments(db, actor, _strings(params, "specialty")),
        institution_ids=institutions or None,
        pool=_pool_filter(_strings(params, "service-category")),
        bookable_only=True,
    )
    departments = registry.department_names(db, {f.slot.department_id for f in free})
    return FhirResponse(_bundle(request, [_proposed(f, departments, patient_id) for f in free]))


@router.post("/Appointment/$find", response_class=FhirResponse)
def find_post(request: Request, db: DB, actor: CurrentActor, body: FhirBody) -> FhirResponse:
    """ITI-115 Find Potential Appointments: proposed Appointments for free slots the caller
    may book (start, end, specialty, organization / location-reference, service-category
    reserved|general, patient-reference, _count)."""
    return find_appointments(request, db, actor, parameters_of(body))


def _appointment_in(params: dict[str, list[dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """The slot an operation's appointment is about, and the Appointment resource if given:
    `appointment-reference` (Appointment/slot-<id>) or `appointment-resource` (an Appointment
    whose `slot` references the Slot)."""
    ref_entry = _one(params, "appointment-reference")
    res_entry = _one(params, "appointment-resource")
    if (ref_entry is None) == (res_entry is None):
        raise Invalid(
            "须且只能提供 appointment-reference 或 appointment-resource 之一",
            field="appointment-reference",
        )
    if ref_entry is not None:
        ref = reference_id(
            str((ref_entry.get("valueReference") or {}).get("reference") or ""), "Appointment"
        )
        if not ref.startswith(PROPOSED_PREFIX) or not ref[len(PROPOSED_PREFIX) :].isdigit():
            raise Invalid(
                "appointment-reference 须引用 $find 返回的预约（Appointment/slot-<号源>）",
                field="appointment-reference",
            )
        return int(ref[len(PROPOSED_PREFIX) :]), {}
    assert res_entry is not None
    resource = res_entry.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "Appointment":
        raise Invalid("appointment-resource 须为 Appointment 资源", field="appointment-resource")
    slots = [
        reference_id(str(s.get("reference") or ""), "Slot") for s in resource.get("slot") or []
    ]
    if len(slots) != 1 or not slots[0].isdigit():
        raise Invalid("Appointment.slot 须引用且只引用一个号源", field="Appointment.slot")
    return int(slots[0]), resource


@router.post("/Appointment/$hold", response_class=FhirResponse)
def hold(request: Request, db: DB, actor: CurrentActor, body: FhirBody) -> FhirResponse:
    """ITI-116 Hold Appointment: keep the slot for the caller for a few minutes. The answer is
    the appointment, status pending, with the hold token (identifier) that $book needs."""
    slot_id, resource = _appointment_in(parameters_of(body))
    slot, token = service.hold_slot(db, actor, slot_id)
    assert slot.held_until is not None
    free = service.slot_view(db, actor, slot)
    departments = registry.department_names(db, [slot.department_id])
    patient_id = _patient_of(resource) if resource else None
    held = _proposed(free, departments, patient_id)
    held["status"] = "pending"
    held["identifier"] = [{"system": HOLD_TOKEN_SYSTEM, "value": token}]
    held["extension"] = [{"url": HOLD_EXPIRES_URL, "valueDateTime": slot.held_until.isoformat()}]
    return FhirResponse(_bundle(request, [held]))


def _patient_of(resource: dict[str, Any]) -> int | None:
    for participant in resource.get("participant") or []:
        ref = str((participant.get("actor") or {}).get("reference") or "")
        if ref.startswith("Patient/") or "/Patient/" in ref:
            rid = reference_id(ref, "Patient")
            if not rid.isdigit():
                raise Invalid("participant 须引用 Patient/<id>", field="Appointment.participant")
            return int(rid)
    return None


@router.post("/Appointment/$book", response_class=FhirResponse)
def book(request: Request, db: DB, actor: CurrentActor, body: FhirBody) -> FhirResponse:
    """ITI-117 Book Appointment: book the slot for the patient (participant Patient/<id> of
    `appointment-resource`, or `patient-reference` beside `appointment-reference`), with the
    hold token if it was held. Taken meanwhile, or a lapsed hold taken by someone else: 409."""
    params = parameters_of(body)
    slot_id, resource = _appointment_in(params)
    patient_id = _patient_of(resource) if resource else None
    if patient_id is None:
        patients = _references(params, "patient-reference", "Patient")
        patient_id = patients[0] if len(patients) == 1 else None
    if patient_id is None:
        raise Invalid(
            "预约须指明患者（participant 中的 Patient/<id>）", field="Appointment.participant"
        )
    tokens = [
        i.get("value")
        for i in resource.get("identifier") or []
        if i.get("system") == HOLD_TOKEN_SYSTEM and i.get("value")
    ]
    appointment = service.book_slot(
        db,
        actor,
        slot_id=slot_id,
        resident_id=patient_id,
        hold_token=str(tokens[0]) if tokens else None,
    )
    booked = appointment_to_fhir(appointment, service.get_slot(db, actor, slot_id))
    return FhirResponse(_bundle(request, [booked]))
