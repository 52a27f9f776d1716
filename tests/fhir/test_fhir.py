"""FHIR R4 read side: resources validate with the independent fhir.resources (R4B) models,
search parameters behave, a bad 身份证号 answers an OperationOutcome, and the independent
fhirpy client works against a running server."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from tests.conftest import City, LiveServer, login

from caregrid.core.fhir import ID_CARD_SYSTEM
from caregrid.registry.idnumber import make_id_number

NUMBER = make_id_number("371302", date(1970, 6, 1), 13)


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            validate(entry["resource"])


def patient_body(city: City, number: str = NUMBER) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": ID_CARD_SYSTEM, "value": number}],
        "name": [{"text": "欧阳娜娜"}],
        "gender": "male",
        "birthDate": "1970-06-01",
        "managingOrganization": {"reference": f"Organization/{city.township_id}"},
    }


def test_metadata_is_a_valid_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/R4/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    validate(statement)
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Organization", "Practitioner", "PractitionerRole", "Patient"} <= types


def test_organizations_validate_and_members_are_part_of_their_group(
    client: TestClient, city: City
) -> None:
    headers = login(client, "gp_wang")
    lead = client.get(f"/fhir/R4/Organization/{city.lead_id}", headers=headers).json()
    validate(lead)
    assert lead["partOf"]["reference"] == f"Organization/group-{city.group_id}"
    members = client.get(
        "/fhir/R4/Organization", params={"partof": f"group-{city.group_id}"}, headers=headers
    ).json()
    validate(members)
    assert {e["resource"]["name"] for e in members["entry"]} == {
        "测试市人民医院",
        "金雀山街道社区卫生服务中心",
    }
    group = client.get(f"/fhir/R4/Organization/group-{city.group_id}", headers=headers).json()
    validate(group)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"name": "测试市"},
            {
                "测试市人民医院",
                "测试市中医医院",
                "测试市人民医院医疗集团",
                "测试市中医医院医疗集团",
            },
        ),
        ({"type": "tcm"}, {"测试市中医医院"}),
        (
            {"type": "https://caregrid.org/fhir/CodeSystem/institution-level|primary"},
            {"金雀山街道社区卫生服务中心"},
        ),
        ({"identifier": "T-RMYY"}, {"测试市人民医院"}),
        ({"name:contains": "金雀山"}, {"金雀山街道社区卫生服务中心"}),
    ],
)
def test_organization_search_parameters(
    client: TestClient, city: City, params: dict, expected: set
) -> None:
    bundle = client.get(
        "/fhir/R4/Organization", params=params, headers=login(client, "gp_wang")
    ).json()
    validate(bundle)
    assert {e["resource"]["name"] for e in bundle.get("entry", [])} == expected
    assert bundle["total"] == len(expected)


def test_patient_create_read_and_search(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang") | {"Content-Type": "application/fhir+json"}
    created = client.post("/fhir/R4/Patient", json=patient_body(city), headers=headers)
    assert created.status_code == 201, created.text
    patient = created.json()
    validate(patient)
    assert created.headers["location"].endswith(f"/Patient/{patient['id']}")
    assert patient["name"][0]["family"] == "欧阳"
    read = client.get(f"/fhir/R4/Patient/{patient['id']}", headers=headers).json()
    assert read["identifier"][0]["value"] == NUMBER
    by_id = client.get(
        "/fhir/R4/Patient", params={"identifier": f"{ID_CARD_SYSTEM}|{NUMBER}"}, headers=headers
    )
    validate(by_id.json())
    assert by_id.json()["total"] == 1


def test_patient_search_returns_only_residents_in_care(client: TestClient, city: City) -> None:
    client.post("/fhir/R4/Patient", json=patient_body(city), headers=login(client, "gp_wang"))
    outsider = login(client, "outsider_zhao")
    bundle = client.get("/fhir/R4/Patient", params={"name": "欧阳"}, headers=outsider).json()
    assert bundle["total"] == 0
    assert client.get("/fhir/R4/Patient/1", headers=outsider).status_code == 404


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        (NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1"), "校验"),
        ("37130219700601", "位"),
        ("371302197013010019", "日期"),
    ],
)
def test_a_bad_id_number_is_an_operation_outcome(
    client: TestClient, city: City, number: str, problem: str
) -> None:
    response = client.post(
        "/fhir/R4/Patient", json=patient_body(city, number), headers=login(client, "gp_wang")
    )
    assert response.status_code == 422
    outcome = response.json()
    validate(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    assert problem in outcome["issue"][0]["diagnostics"]


def test_a_structurally_invalid_patient_names_the_element(client: TestClient, city: City) -> None:
    body = patient_body(city) | {"gender": 42}
    response = client.post("/fhir/R4/Patient", json=body, headers=login(client, "gp_wang"))
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"


def test_fhir_errors_are_operation_outcomes(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    missing = client.get("/fhir/R4/Organization/999999", headers=headers)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    unauth = client.get("/fhir/R4/Patient/1")
    assert unauth.status_code == 401 and unauth.json()["resourceType"] == "OperationOutcome"
    bad_count = client.get("/fhir/R4/Organization", params={"_count": 0}, headers=headers)
    assert bad_count.status_code == 422 and bad_count.json()["resourceType"] == "OperationOutcome"


def test_practitioner_and_roles(client: TestClient, city: City) -> None:
    admin = login(client, "admin_sun")
    p = client.post(
        "/api/v1/practitioners",
        json={"code": "P-9", "name": "司马光", "sex": "male"},
        headers=admin,
    ).json()
    client.post(
        f"/api/v1/practitioners/{p['id']}/roles",
        json={"institution_id": city.lead_id, "primary_site": True},
        headers=admin,
    )
    client.post(
        f"/api/v1/practitioners/{p['id']}/roles",
        json={"institution_id": city.township_id},
        headers=admin,
    )
    practitioner = client.get(f"/fhir/R4/Practitioner/{p['id']}", headers=admin).json()
    validate(practitioner)
    assert practitioner["name"][0]["family"] == "司马"
    roles = client.get(
        "/fhir/R4/PractitionerRole",
        params={"practitioner": f"Practitioner/{p['id']}"},
        headers=admin,
    ).json()
    validate(roles)
    assert roles["total"] == 2
    orgs = {e["resource"]["organization"]["reference"] for e in roles["entry"]}
    assert orgs == {f"Organization/{city.lead_id}", f"Organization/{city.township_id}"}


def test_the_independent_fhirpy_client_works_against_a_running_server(
    live_server: LiveServer,
) -> None:
    import asyncio

    import httpx
    from fhirpy import AsyncFHIRClient
    from fhirpy.base.exceptions import OperationOutcome

    token = httpx.post(
        f"{live_server.url}/api/v1/auth/token",
        data={"username": "gp_wang", "password": live_server.city.password},
    ).json()
    client = AsyncFHIRClient(
        f"{live_server.url}/fhir/R4", authorization=f"Bearer {token['access_token']}"
    )

    async def scenario() -> None:
        orgs = await client.resources("Organization").search(type="primary").fetch()
        assert [o["name"] for o in orgs] == ["金雀山街道社区卫生服务中心"]
        number = make_id_number("371302", date(1980, 1, 1), 21)
        patient = client.resource(
            "Patient", **patient_body(live_server.city, number) | {"birthDate": "1980-01-01"}
        )
        await patient.save()
        assert patient["id"]
        fetched = (
            await client.resources("Patient")
            .search(identifier=f"{ID_CARD_SYSTEM}|{number}")
            .first()
        )
        assert fetched is not None and fetched["name"][0]["text"] == "欧阳娜娜"
        bad = client.resource("Patient", **patient_body(live_server.city, "371302198001010000"))
        with pytest.raises(OperationOutcome) as outcome:
            await bad.save()
        assert "校验" in outcome.value.resource["issue"][0]["diagnostics"]

    asyncio.run(scenario())


def test_fhirpy_posts_a_transaction_and_searches_the_record(live_server: LiveServer) -> None:
    """Another system's client (fhirpy) sends a visit Bundle built with fhir.resources, then
    finds the encounter and observations through FHIR search; re-sending changes nothing."""
    import asyncio

    import httpx
    from fhirpy import AsyncFHIRClient
    from tests.record.test_fhir_ingest import visit_bundle

    login_form = {"username": "specialist_li", "password": live_server.city.password}
    token = httpx.post(f"{live_server.url}/api/v1/auth/token", data=login_form).json()
    client = AsyncFHIRClient(f"{live_server.url}/fhir/R4",
                             authorization=f"Bearer {token['access_token']}")  # fmt: skip

    async def scenario() -> None:
        bundle = visit_bundle()
        first = await client.execute("", method="post", data=bundle)
        assert first["type"] == "transaction-response"
        statuses = [e["response"]["status"][:3] for e in first["entry"]]
        assert "201" in statuses and set(statuses) <= {"200", "201"}
        patient = next(e["response"]["location"] for e in first["entry"]
                       if e["response"]["location"].startswith("Patient/"))  # fmt: skip
        patient_id = patient.split("/")[1]
        encounters = await client.resources("Encounter").search(patient=patient_id).fetch()
        assert len(encounters) == 1
        observations = await client.resources("Observation").search(patient=patient_id).fetch()
        assert observations
        again = await client.execute("", method="post", data=bundle)
        assert {e["response"]["status"][:3] for e in again["entry"]} == {"200"}

    asyncio.run(scenario())
