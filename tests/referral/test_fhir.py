"""FHIR R4: a referral as ServiceRequest + Task, slots and appointments, validated with the
independent fhir.resources (R4B) models; outsiders get an OperationOutcome 404."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.orm import Session

from caregrid.core.clock import frozen_clock
from caregrid.registry.service import install_default_catalogs
from tests.conftest import City, login
from tests.referral.factories import T0, make_clinic, make_resident


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        validate(entry["resource"])


def test_referral_scheduling_resources_are_valid_fhir(
    client: TestClient, db: Session, city: City
) -> None:
    install_default_catalogs(db)
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    with frozen_clock(T0):
        gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
        outsider = login(client, "outsider_zhao")
        slots = client.get("/fhir/R4/Slot", headers=gp)
        assert slots.status_code == 200, slots.text
        validate(slots.json())
        assert slots.json()["total"] == len(clinic.slot_ids)
        created = client.post(
            "/api/v1/referrals",
            json={
                "resident_id": resident,
                "to_institution_id": city.lead_id,
                "diagnosis_code": "I21.0",
                "summary": "胸痛",
                "slot_id": clinic.reserved_ids[0],
            },
            headers=gp,
        ).json()
        client.post(f"/api/v1/referrals/{created['id']}/accept", headers=sp)
        request = client.get(f"/fhir/R4/ServiceRequest/{created['id']}", headers=gp).json()
        validate(request)
        assert request["status"] == "active" and request["subject"]["reference"].endswith(
            str(resident)
        )
        task = client.get(f"/fhir/R4/Task/{created['id']}", headers=sp).json()
        validate(task)
        assert task["status"] == "ready"
        assert task["focus"]["reference"] == f"ServiceRequest/{created['id']}"
        bundle = client.get(f"/fhir/R4/Task?patient=Patient/{resident}", headers=gp).json()
        validate(bundle)
        assert bundle["total"] == 1
        appointment = client.get(
            f"/fhir/R4/Appointment/{created['appointment_id']}", headers=sp
        ).json()
        validate(appointment)
        assert appointment["serviceCategory"][0]["coding"][0]["code"] == "reserved"
        denied = client.get(f"/fhir/R4/ServiceRequest/{created['id']}", headers=outsider)
        assert denied.status_code == 404
        assert denied.json()["resourceType"] == "OperationOutcome"
        assert client.get("/fhir/R4/Task", headers=outsider).json()["total"] == 0
