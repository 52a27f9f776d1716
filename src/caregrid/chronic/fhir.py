"""FHIR R4 Observation for follow-up vitals: ``Observation/fu-<id>-bp`` (blood-pressure panel,
LOINC 85354-9 with 8480-6 / 8462-4) and ``Observation/fu-<id>-glu`` (fasting glucose, LOINC
1558-6). Reading goes through the access check (404 without a care relationship)."""

from __future__ import annotations

import re
from typing import Any

from caregrid.chronic.models import FollowUp
from caregrid.core.errors import NotFound
from caregrid.core.fhir import FhirResponse
from caregrid.core.http import DB, api_router
from caregrid.core.ids import MAX_ID
from caregrid.identity.access import require_resident_access
from caregrid.identity.deps import CurrentActor

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
FOLLOWUP_ID = re.compile(r"^fu-(\d{1,10})-(bp|glu)$")


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def followup_observations(f: FollowUp) -> list[dict[str, Any]]:
    """The vitals of one follow-up as FHIR Observations (vital-signs / laboratory)."""
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{f.resident_id}"},
        "effectiveDateTime": f.followed_on.isoformat(),
    }
    if f.institution_id is not None:
        base["performer"] = [{"reference": f"Organization/{f.institution_id}"}]
    out: list[dict[str, Any]] = []
    if f.sbp is not None and f.dbp is not None:
        out.append(
            {
                **base,
                "id": f"fu-{f.id}-bp",
                "category": [{"coding": [{"system": OBS_CATEGORY_SYSTEM, "code": "vital-signs"}]}],
                "code": {
                    "coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure"}],
                    "text": "随访血压",
                },
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8480-6"}], "text": "收缩压"},
                        "valueQuantity": _quantity(f.sbp, "mmHg", "mm[Hg]"),
                    },
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8462-4"}], "text": "舒张压"},
                        "valueQuantity": _quantity(f.dbp, "mmHg", "mm[Hg]"),
                    },
                ],
            }
        )
    if f.fasting_glucose is not None:
        out.append(
            {
                **base,
                "id": f"fu-{f.id}-glu",
                "category": [{"coding": [{"system": OBS_CATEGORY_SYSTEM, "code": "laboratory"}]}],
                "code": {
                    "coding": [{"system": LOINC, "code": "1558-6", "display": "Fasting glucose"}],
                    "text": "空腹血糖",
                },
                "valueQuantity": _quantity(f.fasting_glucose, "mmol/L", "mmol/L"),
            }
        )
    return out


@router.get("/Observation/fu-{rest}", response_class=FhirResponse)
def read_followup_observation(rest: str, db: DB, actor: CurrentActor) -> FhirResponse:
    fhir_id = f"fu-{rest}"
    match = FOLLOWUP_ID.match(fhir_id)
    followup = None
    if match and int(match.group(1)) <= MAX_ID:
        followup = db.get(FollowUp, int(match.group(1)))
    if followup is None:
        raise NotFound(f"Observation/{fhir_id} 不存在")
    require_resident_access(db, actor, followup.resident_id, action="read", resource="Observation")
    for resource in followup_observations(followup):
        if resource["id"] == fhir_id:
            return FhirResponse(resource)
    raise NotFound(f"Observation/{fhir_id} 不存在")
