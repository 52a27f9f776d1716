"""FHIR R4 read and search for referrals: the request as a ServiceRequest and its workflow
state as a Task (the FHIR workflow pattern for referrals: ServiceRequest + Task, Task.focus
pointing at the request). Access as in the API: only referrals the caller may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy import select

from caregrid.core.fhir import (
    CODESYSTEM_BASE,
    FhirResponse,
    SearchParam,
    capability,
    reference_id,
    searchset,
)
from caregrid.core.http import DB, api_router
from caregrid.identity.deps import CurrentActor
from caregrid.referral import service
from caregrid.referral.errors import ReferralNotFound
from caregrid.referral.models import Referral

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
REQUEST_STATUS = {
    "draft": "draft",
    "submitted": "active",
    "accepted": "active",
    "scheduled": "active",
    "arrived": "active",
    "completed": "completed",
    "rejected": "revoked",
    "cancelled": "revoked",
    "expired": "revoked",
}
TASK_STATUS = {
    "draft": "draft",
    "submitted": "requested",
    "accepted": "accepted",
    "rejected": "rejected",
    "scheduled": "ready",
    "arrived": "in-progress",
    "completed": "completed",
    "cancelled": "cancelled",
    "expired": "failed",
}
PRIORITY = {"routine": "routine", "priority": "urgent", "urgent": "stat"}
MAX_COUNT = 100
Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)]
PageNo = Annotated[int, Query(alias="_page", ge=1, le=10_000)]

_PATIENT = SearchParam("patient", "reference", "Patient/<id>")
capability(
    "ServiceRequest",
    ["read", "search-type"],
    [_PATIENT, SearchParam("status", "token", "draft/active/completed/revoked")],
)
capability(
    "Task",
    ["read", "search-type"],
    [_PATIENT, SearchParam("status", "token", "requested/accepted/rejected/ready/...")],
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _org(institution_id: int | None, external: str | None) -> dict[str, Any]:
    if institution_id is not None:
        return {"reference": f"Organization/{institution_id}"}
    return {"display": external or "集团外机构"}


def service_request(r: Referral) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(r.id),
        "status": REQUEST_STATUS[r.status],
        "intent": "order",
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
        ],
        "priority": PRIORITY[r.priority],
        "code": {
            "coding": [
                {
                    "system": f"{CODESYSTEM_BASE}/referral-direction",
                    "code": r.direction,
                    "display": "上转" if r.direction == "up" else "下转",
                }
            ]
        },
        "subject": {"reference": f"Patient/{r.resident_id}"},
        "authoredOn": _iso(r.submitted_at or r.created_at),
        "requester": {"reference": f"Organization/{r.from_institution_id}"},
        "performer": [_org(r.to_institution_id, r.external_institution)],
        "reasonCode": [
            {
                "coding": [{"system": f"{CODESYSTEM_BASE}/referral-reason", "code": r.reason_code}],
                "text": r.reason_text or r.reason_code,
            }
        ],
    }
    if r.diagnosis_code:
        resource["reasonCode"].append(
            {"coding": [{"system": ICD10, "code": r.diagnosis_code}], "text": r.diagnosis_name}
        )
    notes = [t for t in (r.summary, r.care_plan) if t]
    if notes:
        resource["note"] = [{"text": t} for t in notes]
    if r.parent_id:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{r.parent_id}"}]
    return resource


def task(r: Referral) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(r.id),
        "status": TASK_STATUS[r.status],
        "intent": "order",
        "priority": PRIORITY[r.priority],
        "focus": {"reference": f"ServiceRequest/{r.id}"},
        "for": {"reference": f"Patient/{r.resident_id}"},
        "authoredOn": _iso(r.created_at),
        "lastModified": _iso(
            r.closed_at or r.arrived_at or r.accepted_at or r.submitted_at or r.created_at
        ),
        "requester": {"reference": f"Organization/{r.from_institution_id}"},
        "owner": _org(r.to_institution_id, r.external_institution),
    }
    if r.due_at is not None:
        resource["restriction"] = {"period": {"end": _iso(r.due_at)}}
    if r.rejection_reason:
        resource["statusReason"] = {"text": r.rejection_reason}
    if r.feedback:
        resource["output"] = [
            {
                "type": {"text": "诊疗结果反馈"},
                "valueString": r.feedback,
            }
        ]
    return resource


def _search(
    db: DB, actor: CurrentActor, patient: str | None, page: int, count: int
) -> tuple[list[Referral], int]:
    stmt = select(Referral).order_by(Referral.id)
    if patient:
        wanted = reference_id(patient, "Patient")
        stmt = stmt.where(Referral.resident_id == (int(wanted) if wanted.isdigit() else 0))
    visible = [r for r in db.scalars(stmt.limit(5000)) if service._sees(actor, r)]
    return visible[(page - 1) * count : page * count], len(visible)


@router.get("/ServiceRequest/{rid}", response_class=FhirResponse)
def read_service_request(rid: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    if not rid.isdigit():
        raise ReferralNotFound("未找到该转诊单")
    return service_request(service.get_referral(db, actor, int(rid)))


@router.get("/Task/{rid}", response_class=FhirResponse)
def read_task(rid: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    if not rid.isdigit():
        raise ReferralNotFound("未找到该转诊单")
    return task(service.get_referral(db, actor, int(rid)))


@router.get("/ServiceRequest", response_class=FhirResponse)
def search_service_requests(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    status: str | None = None,
    count: Count = 20,
    page: PageNo = 1,
) -> dict[str, Any]:
    rows, total = _search(db, actor, patient, 1, 5000)
    resources = [service_request(r) for r in rows]
    if status:
        resources = [x for x in resources if x["status"] == status]
    total = len(resources)
    return searchset(
        request, resources[(page - 1) * count : page * count], total, page=page, count=count
    )


@router.get("/Task", response_class=FhirResponse)
def search_tasks(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    status: str | None = None,
    count: Count = 20,
    page: PageNo = 1,
) -> dict[str, Any]:
    rows, total = _search(db, actor, patient, 1, 5000)
    resources = [task(r) for r in rows]
    if status:
        resources = [x for x in resources if x["status"] == status]
    total = len(resources)
    return searchset(
        request, resources[(page - 1) * count : page * count], total, page=page, count=count
    )
