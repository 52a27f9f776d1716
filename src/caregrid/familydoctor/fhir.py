"""FHIR R4 CareTeam (家庭医生团队) and EpisodeOfCare (the contract period: status, period,
managing organisation, care team), as reference/standards.md maps 家庭医生签约."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy.orm import Session

from caregrid.core.errors import NotFound
from caregrid.core.fhir import (
    CODESYSTEM_BASE,
    FhirResponse,
    SearchParam,
    capability,
    reference_id,
    searchset,
)
from caregrid.core.http import DB, api_router
from caregrid.core.ids import MAX_ID
from caregrid.familydoctor import rules
from caregrid.familydoctor import service as fd
from caregrid.familydoctor.models import Contract, ServicePackage, Team
from caregrid.identity.deps import CurrentActor

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

ROLE_SYSTEM = f"{CODESYSTEM_BASE}/family-doctor-team-role"
PACKAGE_SYSTEM = f"{CODESYSTEM_BASE}/family-doctor-package"
EPISODE_STATUS = {"active": "active", "ended": "finished", "changed": "finished",
                  "terminated": "cancelled"}  # fmt: skip

capability("CareTeam", ["read"], [])
capability(
    "EpisodeOfCare",
    ["read", "search-type"],
    [SearchParam("patient", "reference", "Patient/<id>（须有诊疗关系，否则为空）")],
)


def _int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        return -1
    return number if 0 < number <= MAX_ID else -1


def care_team_to_fhir(db: Session, team: Team) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": str(team.id),
        "identifier": [{"system": f"{CODESYSTEM_BASE}/family-doctor-team", "value": team.code}],
        "status": "active" if team.active else "inactive",
        "name": team.name,
        "managingOrganization": [{"reference": f"Organization/{team.base_institution_id}"}],
        "participant": [
            {
                "role": [
                    {
                        "coding": [
                            {
                                "system": ROLE_SYSTEM,
                                "code": m.role,
                                "display": rules.ROLE_LABELS[m.role],
                            }
                        ]
                    }
                ],
                "member": {"reference": f"Practitioner/{m.practitioner_id}"},
                "onBehalfOf": {"reference": f"Organization/{m.institution_id}"},
            }
            for m in fd.team_members(db, team.id)
        ],
    }


def episode_to_fhir(db: Session, contract: Contract) -> dict[str, Any]:
    team = fd.get_team(db, contract.team_id)
    end = contract.ended_on or contract.end_date
    package = db.get_one(ServicePackage, contract.package_id)
    return {
        "resourceType": "EpisodeOfCare",
        "id": str(contract.id),
        "status": EPISODE_STATUS[contract.status],
        "type": [
            {
                "coding": [
                    {"system": PACKAGE_SYSTEM, "code": package.code, "display": package.name}
                ],
                "text": "家庭医生签约服务",
            }
        ],
        "patient": {"reference": f"Patient/{contract.resident_id}"},
        "managingOrganization": {"reference": f"Organization/{team.base_institution_id}"},
        "period": {"start": contract.start_date.isoformat(), "end": end.isoformat()},
        "team": [{"reference": f"CareTeam/{team.id}", "display": team.name}],
    }


@router.get("/CareTeam/{fhir_id}", response_class=FhirResponse)
def read_care_team(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    team_id = _int(fhir_id)
    if team_id < 0:
        raise NotFound(f"CareTeam/{fhir_id} 不存在")
    team = fd.require_team_access(db, actor, team_id)
    return FhirResponse(care_team_to_fhir(db, team))


@router.get("/EpisodeOfCare/{fhir_id}", response_class=FhirResponse)
def read_episode(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    contract_id = _int(fhir_id)
    if contract_id < 0:
        raise NotFound(f"EpisodeOfCare/{fhir_id} 不存在")
    contract = fd.get_contract(db, actor, contract_id)
    return FhirResponse(episode_to_fhir(db, contract))


@router.get("/EpisodeOfCare", response_class=FhirResponse)
def search_episodes(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: Annotated[str, Query()],
) -> FhirResponse:
    """A resident's contracts; a resident the caller may not see gives an empty searchset."""
    resident_id = _int(reference_id(patient, "Patient"))
    contracts: list[Contract] = []
    if resident_id > 0:
        try:
            contracts = list(fd.resident_contracts(db, actor, resident_id))
        except NotFound:
            contracts = []
    resources = [episode_to_fhir(db, c) for c in contracts]
    return FhirResponse(searchset(request, resources, len(resources), page=1, count=100))
