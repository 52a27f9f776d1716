"""FHIR search on the ingested shared record (issue 3 §3; 001 §三(三)2 检查检验结果在线调阅):
what was ingested is visible through Encounter / Observation / DiagnosticReport / Condition
search for a caller with a care relationship, validates with fhir.resources R4B, and an
outsider gets an empty searchset or 404, audited as denied (DESIGN §8)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.audit.models import AuditEntry
from tests.conftest import City, login
from tests.record.test_fhir_ingest import post, validate, visit_bundle


def ingested(client: TestClient) -> str:
    response = post(client, visit_bundle())
    assert response.status_code == 200, response.text
    return response.json()["entry"][0]["response"]["location"]  # Patient/<id>


def search(client: TestClient, path: str, user: str = "specialist_li", **params: Any) -> Any:
    response = client.get(f"/fhir/R4/{path}", params=params, headers=login(client, user))
    assert response.status_code == 200, response.text
    bundle = response.json()
    validate(bundle)
    return bundle


def test_ingested_bundle_round_trips_through_search(client: TestClient, city: City) -> None:
    patient = ingested(client)
    encounters = search(client, "Encounter", patient=patient)
    assert encounters["total"] == 1
    enc = encounters["entry"][0]["resource"]
    assert enc["class"]["code"] == "AMB"
    assert enc["serviceProvider"]["reference"] == f"Organization/{city.lead_id}"
    assert [d["rank"] for d in enc["diagnosis"]] == [1, 2]
    read = client.get(f"/fhir/R4/Encounter/{enc['id']}", headers=login(client, "specialist_li"))
    assert read.status_code == 200
    validate(read.json())

    assert search(client, "Encounter", patient=patient, date="ge2025-03-06")["total"] == 0
    assert search(client, "Encounter", patient=patient, date="ge2025-03-01")["total"] == 1

    glucose = search(client, "Observation", patient=patient, code="http://loinc.org|2345-7")
    assert glucose["total"] == 1
    obs = glucose["entry"][0]["resource"]
    assert obs["valueQuantity"]["value"] == 8.2
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    vitals = search(client, "Observation", patient=patient.split("/")[1], category="vital-signs")
    assert {e["resource"]["code"]["coding"][0]["code"] for e in vitals["entry"]} == {
        "8480-6",
        "8462-4",
    }
    reports = search(client, "DiagnosticReport", patient=patient)
    assert reports["total"] == 1
    assert reports["entry"][0]["resource"]["conclusion"] == "心肺未见明显异常。"
    conditions = search(client, "Condition", patient=patient)
    assert {e["resource"]["code"]["coding"][0]["code"] for e in conditions["entry"]} == {
        "I10",
        "E11.9",
    }
    obs_read = client.get(f"/fhir/R4/Observation/{obs['id']}", headers=login(client, "gp_wang"))
    # gp_wang (township) has no encounter with this resident: 404, never 403.
    assert obs_read.status_code == 404


def test_outsider_gets_an_empty_searchset_and_404_and_is_audited(
    client: TestClient, city: City, db: Session
) -> None:
    patient = ingested(client)
    enc_id = search(client, "Encounter", patient=patient)["entry"][0]["resource"]["id"]
    for kind in ("Encounter", "Observation", "DiagnosticReport", "Condition"):
        assert search(client, kind, user="outsider_zhao", patient=patient)["total"] == 0
    read = client.get(f"/fhir/R4/Encounter/{enc_id}", headers=login(client, "outsider_zhao"))
    assert read.status_code == 404
    assert read.json()["resourceType"] == "OperationOutcome"
    denied = db.scalars(
        select(AuditEntry).where(
            AuditEntry.username == "outsider_zhao", AuditEntry.outcome == "denied"
        )
    ).all()
    assert {e.resource for e in denied} >= {"Encounter", "Observation", "DiagnosticReport"}


def test_search_without_patient_is_an_operation_outcome(client: TestClient, city: City) -> None:
    response = client.get("/fhir/R4/Encounter", headers=login(client, "specialist_li"))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["patient"]
