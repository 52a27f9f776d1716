"""FHIR R4 ingestion of the shared record (issue 3 §2; 003 §二(四)12 电子健康档案和电子病历
连续记录): Bundles written by "another system" (built with the independent fhir.resources R4B
models, not caregrid's serializer) are mapped, ingested all-or-nothing per transaction,
idempotently; bulk NDJSON goes through the same mapping in batches."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.core.fhir import ID_CARD_SYSTEM
from caregrid.record.ingest.fhir_map import (
    COST_EXT,
    GRADE_EXT,
    INSTITUTION_CODE_SYSTEM,
    SOURCE_SYSTEM_BASE,
    map_bundle_entries,
)
from caregrid.record.models import Diagnosis, Prescription, Result
from caregrid.record.models import Encounter as EncounterRow
from caregrid.registry.idnumber import make_id_number
from tests.conftest import City, login

NUMBER = make_id_number("371302", date(1968, 3, 9), 22)
FHIR = {"Content-Type": "application/fhir+json"}
PATIENT_URL = "urn:uuid:7f3c1a52-0000-4000-8000-000000000001"
ORG_URL = "urn:uuid:7f3c1a52-0000-4000-8000-000000000002"
ENC_URL = "urn:uuid:7f3c1a52-0000-4000-8000-000000000003"


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            if "resource" in entry:
                validate(entry["resource"])
            if "outcome" in entry.get("response", {}):
                validate(entry["response"]["outcome"])


def entry(url: str, resource: Any, kind: str) -> BundleEntry:
    return BundleEntry(
        fullUrl=url, resource=resource, request=BundleEntryRequest(method="POST", url=kind)
    )


def visit_bundle(
    *,
    kind: str = "transaction",
    institution: str = "T-RMYY",
    total_fen: int = 35_600,
    end: str = "2025-03-05T10:30:00+08:00",
    systolic: float = 152,
    secondary_code: str = "E11.9",
) -> dict[str, Any]:
    """An outpatient visit at the lead hospital as a member's HIS would send it: Patient,
    Organization, Encounter with cost, two Conditions, a Procedure, a lab Observation, a blood
    pressure panel, an imaging report and a prescription."""
    patient = Patient(
        identifier=[{"system": ID_CARD_SYSTEM, "value": NUMBER}],
        name=[{"family": "张", "given": ["秀英"], "text": "张秀英"}],
        gender="female",
        birthDate=date(1968, 3, 9),
    )
    org = Organization(
        identifier=[{"system": INSTITUTION_CODE_SYSTEM, "value": institution}],
        name="测试市人民医院",
    )
    encounter = Encounter.model_validate(
        {
            "resourceType": "Encounter",
            "identifier": [{"system": "urn:his:t-rmyy:visit", "value": "MZ20250305001"}],
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": PATIENT_URL},
            "serviceProvider": {"reference": ORG_URL},
            "period": {"start": "2025-03-05T09:00:00+08:00", "end": end},
            "extension": [
                {
                    "url": COST_EXT,
                    "extension": [
                        {"url": "total", "valueInteger": total_fen},
                        {"url": "drug", "valueInteger": 12_000},
                        {"url": "exam", "valueMoney": {"value": 180.5, "currency": "CNY"}},
                    ],
                }
            ],
        }
    )
    primary = Condition.model_validate(
        {
            "resourceType": "Condition",
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "高血压"}
                ]
            },
        }
    )
    secondary = Condition.model_validate(
        {
            "resourceType": "Condition",
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": secondary_code}]
            },
        }
    )
    procedure = Procedure.model_validate(
        {
            "resourceType": "Procedure",
            "status": "completed",
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "code": {"coding": [{"code": "89.52", "display": "心电图"}]},
            "extension": [{"url": GRADE_EXT, "valueInteger": 1}],
            "performedDateTime": "2025-03-05T09:20:00+08:00",
        }
    )
    glucose = Observation.model_validate(
        {
            "resourceType": "Observation",
            "identifier": [{"value": "LIS-88001"}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "血糖"},
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "effectiveDateTime": "2025-03-05T09:15:00+08:00",
            "performer": [{"reference": ORG_URL}],
            "valueQuantity": {"value": 8.2, "unit": "mmol/L"},
            "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}],
            "interpretation": [{"coding": [{"code": "H"}]}],
        }
    )
    pressure = Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": "bp-1",
            "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": PATIENT_URL},
            "effectiveDateTime": "2025-03-05T09:05:00+08:00",
            "performer": [{"reference": ORG_URL}],
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": systolic, "unit": "mmHg"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 95, "unit": "mmHg"},
                },
            ],
        }
    )
    report = DiagnosticReport.model_validate(
        {
            "resourceType": "DiagnosticReport",
            "identifier": [{"value": "PACS-5501"}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}
                    ]
                }
            ],
            "code": {"coding": [{"code": "DR-CHEST", "display": "胸部正位片"}]},
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "effectiveDateTime": "2025-03-05T09:40:00+08:00",
            "performer": [{"reference": ORG_URL}],
            "conclusion": "心肺未见明显异常。",
            "presentedForm": [
                {
                    "contentType": "text/plain",
                    "data": base64.b64encode("两肺纹理清晰。".encode()).decode(),
                }
            ],
        }
    )
    medication = MedicationRequest.model_validate(
        {
            "resourceType": "MedicationRequest",
            "identifier": [{"value": "RX-9001-1"}],
            "groupIdentifier": {"value": "RX-9001"},
            "status": "active",
            "intent": "order",
            "subject": {"reference": PATIENT_URL},
            "encounter": {"reference": ENC_URL},
            "authoredOn": "2025-03-05T10:00:00+08:00",
            "requester": {"reference": ORG_URL},
            "medicationCodeableConcept": {
                "coding": [{"code": "XC08CAA014A001", "display": "苯磺酸氨氯地平片"}]
            },
            "dosageInstruction": [
                {
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}],
                }
            ],
            "dispenseRequest": {
                "expectedSupplyDuration": {"value": 4, "unit": "周", "code": "wk"},
                "quantity": {"value": 28},
            },
        }
    )
    bundle = Bundle(
        type=kind,
        entry=[
            entry(PATIENT_URL, patient, "Patient"),
            entry(ORG_URL, org, "Organization"),
            entry(ENC_URL, encounter, "Encounter"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000004", primary, "Condition"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000005", secondary, "Condition"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000006", procedure, "Procedure"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000007", glucose, "Observation"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000008", pressure, "Observation"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-000000000009", report, "DiagnosticReport"),
            entry("urn:uuid:7f3c1a52-0000-4000-8000-00000000000a", medication, "MedicationRequest"),
        ],
    )
    return bundle.model_dump(mode="json")


def post(client: TestClient, bundle: Any, user: str = "specialist_li") -> Any:
    return client.post("/fhir/R4", json=bundle, headers=login(client, user) | FHIR)


def counts(db: Session) -> tuple[int, int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(EncounterRow)) or 0,
        db.scalar(select(func.count()).select_from(Diagnosis)) or 0,
        db.scalar(select(func.count()).select_from(Result)) or 0,
        db.scalar(select(func.count()).select_from(Prescription)) or 0,
    )


# --- pure mapping -----------------------------------------------------------------------------


def test_mapping_turns_a_visit_bundle_into_normalised_records() -> None:
    result = map_bundle_entries(visit_bundle())
    assert result.errors == []
    kinds = [m.resource_type for m in result.records]
    assert kinds.count("Encounter") == 1
    enc = next(m.record for m in result.records if m.resource_type == "Encounter")
    assert enc.source_system == "T-RMYY"
    assert enc.source_id == "MZ20250305001"
    assert enc.exam_fen == 18_050  # 180.50 yuan
    assert [(d.code, d.rank) for d in enc.diagnoses] == [("I10", 1), ("E11.9", 2)]
    assert enc.procedures[0].grade == 1
    results = {
        m.record.source_id: m.record for m in result.records if m.resource_type != "Encounter"
    }
    assert results["LIS-88001"].abnormal_flag == "H"
    assert results["bp-1#8480-6"].value_num == 152
    assert results["DiagnosticReport/PACS-5501"].findings == "两肺纹理清晰。"
    assert results["RX-9001"].items[0].days_supplied == 28


def test_mapping_names_the_element_of_a_structural_error() -> None:
    bundle = visit_bundle()
    bundle["entry"][2]["resource"]["period"]["end"] = "yesterday"
    result = map_bundle_entries(bundle)
    assert [(e.index, e.field) for e in result.errors][:1] == [(2, "period.end")]


def test_discharge_before_admission_is_an_error_on_period_end() -> None:
    result = map_bundle_entries(visit_bundle(end="2025-03-04T10:30:00+08:00"))
    assert any(e.index == 2 and e.field == "period.end" for e in result.errors)


# --- the endpoint -----------------------------------------------------------------------------


def test_transaction_is_ingested_and_reingesting_is_a_no_op(
    client: TestClient, city: City, db: Session
) -> None:
    first = post(client, visit_bundle())
    assert first.status_code == 200, first.text
    body = first.json()
    validate(body)
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[2] == "201 Created"
    assert body["entry"][2]["response"]["location"].startswith("Encounter/")
    assert body["entry"][3]["response"]["location"].startswith("Condition/")
    assert body["entry"][0]["response"]["location"].startswith("Patient/")
    before = counts(db)
    assert before == (1, 2, 4, 1)  # glucose + 2 BP components + report

    again = post(client, visit_bundle())
    assert again.status_code == 200, again.text
    assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert counts(db) == before

    # visible in the resident's timeline at the lead hospital that sent it
    patient_id = body["entry"][0]["response"]["location"].split("/")[1]
    timeline = client.get(
        f"/api/v1/residents/{patient_id}/timeline", headers=login(client, "specialist_li")
    )
    assert timeline.status_code == 200, timeline.text
    kinds = [item["type"] for item in timeline.json()["items"]]
    assert kinds.count("encounter") == 1 and "result" in kinds and "prescription" in kinds


def test_every_written_entry_has_a_location_that_reads_back(client: TestClient, city: City) -> None:
    body = post(client, visit_bundle()).json()
    headers = login(client, "specialist_li")
    kinds = ["Patient", None, "Encounter", "Condition", "Condition", "Procedure",
             "Observation", "Observation", "DiagnosticReport", "MedicationRequest"]  # fmt: skip
    for kind, entry_ in zip(kinds, body["entry"], strict=True):
        location = entry_["response"].get("location")
        if kind is None:  # the Organization is only referenced, not stored
            continue
        assert location and location.startswith(f"{kind}/"), (kind, entry_)
        read = client.get(f"/fhir/R4/{location}", headers=headers)
        assert read.status_code == 200, (location, read.text)
        validate(read.json())
        assert read.json()["resourceType"] == kind
    procedure = client.get(f"/fhir/R4/{body['entry'][5]['response']['location']}", headers=headers)
    assert procedure.json()["extension"] == [{"url": GRADE_EXT, "valueInteger": 1}]
    medication = client.get(
        f"/fhir/R4/{body['entry'][9]['response']['location']}", headers=headers
    ).json()
    assert medication["dispenseRequest"]["expectedSupplyDuration"]["value"] == 28

    patient = body["entry"][0]["response"]["location"]
    for kind in ("Procedure", "MedicationRequest"):
        found = client.get(f"/fhir/R4/{kind}", params={"patient": patient}, headers=headers)
        assert found.status_code == 200, found.text
        validate(found.json())
        assert found.json()["total"] == 1
        # a doctor of another group sees nothing, and cannot read the resource either
        outsider = login(client, "outsider_zhao")
        hidden = client.get(f"/fhir/R4/{kind}", params={"patient": patient}, headers=outsider)
        assert hidden.json()["total"] == 0
        fhir_id = found.json()["entry"][0]["resource"]["id"]
        assert client.get(f"/fhir/R4/{kind}/{fhir_id}", headers=outsider).status_code == 404


def test_a_result_from_another_member_joins_the_visit_it_was_made_for(
    client: TestClient, city: City, db: Session
) -> None:
    # 乡检查、县诊断 the other way round: the township centre performs a test for a visit whose
    # record the lead hospital sent; the visit is named by its own source system.
    assert post(client, visit_bundle()).status_code == 200
    visit = db.scalars(select(EncounterRow).where(EncounterRow.source_id == "MZ20250305001")).one()

    def centre_bundle(encounter_ref: dict[str, Any]) -> dict[str, Any]:
        patient = Patient(identifier=[{"system": ID_CARD_SYSTEM, "value": NUMBER}])
        centre = Organization(
            identifier=[{"system": INSTITUTION_CODE_SYSTEM, "value": "T-JQS"}], name="测试卫生院"
        )
        ecg = Observation.model_validate(
            {
                "resourceType": "Observation",
                "identifier": [{"value": "ECG-5501"}],
                "status": "final",
                "category": [{"coding": [{"code": "laboratory"}]}],
                "code": {"coding": [{"code": "HR"}], "text": "心率"},
                "subject": {"reference": PATIENT_URL},
                "encounter": encounter_ref,
                "effectiveDateTime": "2025-03-05T09:40:00+08:00",
                "performer": [{"reference": ORG_URL}],
                "valueQuantity": {"value": 72, "unit": "/min"},
            }
        )
        return Bundle(
            type="transaction",
            entry=[
                entry(PATIENT_URL, patient, "Patient"),
                entry(ORG_URL, centre, "Organization"),
                entry("urn:uuid:7f3c1a52-0000-4000-8000-0000000000e1", ecg, "Observation"),
            ],
        ).model_dump(mode="json")

    unqualified = post(client, centre_bundle({"identifier": {"value": "MZ20250305001"}}))
    assert unqualified.status_code == 422
    assert "T-JQS" in unqualified.text  # looked for among the centre's own visits
    qualified = post(
        client,
        centre_bundle(
            {"identifier": {"system": f"{SOURCE_SYSTEM_BASE}/T-RMYY", "value": "MZ20250305001"}}
        ),
    )
    assert qualified.status_code == 200, qualified.text
    ecg = db.scalars(select(Result).where(Result.source_id == "ECG-5501")).one()
    assert (ecg.source_system, ecg.encounter_id) == ("T-JQS", visit.id)


def test_a_changed_resource_is_updated_not_duplicated(
    client: TestClient, city: City, db: Session
) -> None:
    assert post(client, visit_bundle()).status_code == 200
    changed = post(client, visit_bundle(total_fen=40_000, systolic=138))
    assert changed.status_code == 200, changed.text
    assert counts(db) == (1, 2, 4, 1)
    enc = db.scalars(select(EncounterRow)).one()
    db.refresh(enc)
    assert enc.total_fen == 40_000
    systolic = db.scalars(select(Result).where(Result.item_code == "8480-6")).one()
    db.refresh(systolic)
    assert systolic.value_num == 138


def test_a_condition_read_before_a_changed_reimport_resolves_to_the_new_content(
    client: TestClient, city: City
) -> None:
    headers = login(client, "specialist_li")
    first = post(client, visit_bundle()).json()
    condition = first["entry"][4]["response"]["location"]
    procedure = first["entry"][5]["response"]["location"]
    assert (
        client.get(f"/fhir/R4/{condition}", headers=headers).json()["code"]["coding"][0]["code"]
        == "E11.9"
    )
    again = post(client, visit_bundle(total_fen=40_000, secondary_code="E11.2")).json()
    # the sender's changed record keeps its Condition and Procedure ids
    assert again["entry"][4]["response"]["location"] == condition
    assert again["entry"][5]["response"]["location"] == procedure
    read = client.get(f"/fhir/R4/{condition}", headers=headers)
    assert read.status_code == 200, read.text
    validate(read.json())
    assert read.json()["code"]["coding"][0]["code"] == "E11.2"
    encounter = client.get(f"/fhir/R4/{again['entry'][2]['response']['location']}", headers=headers)
    assert {d["condition"]["reference"] for d in encounter.json()["diagnosis"]} >= {condition}


def test_a_transaction_with_one_bad_entry_writes_nothing(
    client: TestClient, city: City, db: Session
) -> None:
    bundle = visit_bundle(end="2025-03-04T10:30:00+08:00")
    bundle["entry"][6]["resource"]["subject"] = {"reference": "urn:uuid:missing"}
    response = post(client, bundle)
    assert response.status_code == 422
    outcome = response.json()
    validate(outcome)
    expressions = {x for issue in outcome["issue"] for x in issue.get("expression", [])}
    assert "Bundle.entry[2].resource.period.end" in expressions
    assert "Bundle.entry[6].resource.subject" in expressions
    assert any("早于" in issue["diagnostics"] for issue in outcome["issue"])
    assert counts(db) == (0, 0, 0, 0)


def test_an_unknown_institution_is_reported_on_the_entry(
    client: TestClient, city: City, db: Session
) -> None:
    response = post(client, visit_bundle(institution="NO-SUCH"))
    assert response.status_code == 422
    issues = response.json()["issue"]
    assert any(
        "Bundle.entry[2].resource.serviceProvider" in i.get("expression", []) for i in issues
    )
    assert counts(db) == (0, 0, 0, 0)


def test_a_batch_with_one_bad_entry_writes_the_others(
    client: TestClient, city: City, db: Session
) -> None:
    bundle = visit_bundle(kind="batch")
    bundle["entry"][8]["resource"]["category"] = [{"coding": [{"code": "XYZ"}]}]
    bundle["entry"].append(
        {"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Basic", "code": {"text": "x"}}}
    )
    response = post(client, bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    validate(body)
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[8].startswith("422")
    assert statuses[10].startswith("422")
    assert "不支持的资源类型" in json.dumps(body["entry"][10], ensure_ascii=False)
    assert statuses[2] == "201 Created"
    assert counts(db) == (1, 2, 3, 1)


def test_a_bundle_of_another_type_is_refused(client: TestClient, city: City) -> None:
    bundle = visit_bundle()
    bundle["type"] = "collection"
    response = post(client, bundle)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]


def test_a_3_mb_bundle_is_accepted_and_a_50_mb_bundle_is_refused(
    client: TestClient, city: City
) -> None:
    headers = login(client, "specialist_li") | FHIR
    text = json.dumps(visit_bundle())
    padded = text[:-1] + " " * 3_000_000 + "}"
    assert client.post("/fhir/R4", content=padded, headers=headers).status_code == 200
    huge = text[:-1] + " " * 50_000_000 + "}"
    response = client.post("/fhir/R4", content=huge, headers=headers)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_ndjson_import_is_batched_and_idempotent(tmp_path: Any) -> None:
    """`caregrid import fhir PATH`: Patient lines anywhere, errors by line, re-run is a no-op."""
    from caregrid.core.actor import Actor
    from caregrid.core.db import unit_of_work
    from caregrid.core.migrate import upgrade
    from caregrid.record.ingest.ndjson import import_ndjson
    from tests.conftest import build_city
    from tests.support import use_database

    text = json.dumps(visit_bundle())
    for n in range(1, 11):
        text = text.replace(f"urn:uuid:7f3c1a52-0000-4000-8000-{n:012x}", f"R/{n}")
    resources = [e["resource"] | {"id": str(n)} for n, e in enumerate(json.loads(text)["entry"], 1)]
    for resource in resources:
        body = json.dumps(resource)
        for n in range(1, 11):
            body = body.replace(f'"R/{n}"', f'"{resources[n - 1]["resourceType"]}/{n}"')
        resource.clear()
        resource.update(json.loads(body))
    lines = [json.dumps(r, ensure_ascii=False) for r in resources[2:] + resources[:2]]
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(lines) + "\n{broken\n", encoding="utf-8")
    with use_database(f"sqlite:///{tmp_path}/nd.db") as engine:
        upgrade(engine)
        with unit_of_work(engine) as session:
            build_city(session)
        first = import_ndjson(path, Actor.system(), batch_size=2)
        assert [e.line for e in first.errors] == [11]
        assert first.created == 6 and first.failed_batches == 0
        again = import_ndjson(path, Actor.system(), batch_size=2)
        assert again.created == 0 and again.updated == 0 and again.unchanged == 6
