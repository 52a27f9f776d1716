"""The family-doctor and chronic-care API and FHIR endpoints: personas, status codes, errors
naming the rule, nothing half-written, resources valid per the independent fhir.resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.chronic.models import FollowUp
from caregrid.core.clock import frozen_clock
from caregrid.familydoctor.models import Contract
from tests.conftest import City, login
from tests.familydoctor.builders import make_resident, make_team

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> object:
    with frozen_clock(NOW):
        yield


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []):
        validate(entry["resource"])


def _setup(db: Session, city: City) -> tuple[int, int]:
    team = make_team(db, city)
    rid = make_resident(db, city, name="孙桂兰")
    db.commit()
    return team.id, rid


def test_gp_signs_a_contract_and_a_second_one_conflicts(
    client: TestClient, db: Session, city: City
) -> None:
    team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    body = {"resident_id": rid, "team_id": team_id, "package_code": "ELDERLY"}
    created = client.post("/api/v1/familydoctor/contracts", json=body, headers=gp)
    assert created.status_code == 201, created.text
    assert created.json()["end_date"] == "2027-06-01"
    again = client.post("/api/v1/familydoctor/contracts", json=body, headers=gp)
    assert again.status_code == 409
    assert again.json()["error"] == "ActiveContractExists"
    assert again.json()["rule"] == "one_active_contract"
    assert db.scalar(select(func.count()).where(Contract.resident_id == rid)) == 1
    listed = client.get(f"/api/v1/familydoctor/residents/{rid}/contracts", headers=gp)
    assert [c["status"] for c in listed.json()] == ["active"]


def test_outsider_gets_404_everywhere(client: TestClient, db: Session, city: City) -> None:
    team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    contract = client.post(
        "/api/v1/familydoctor/contracts",
        json={"resident_id": rid, "team_id": team_id, "package_code": "BASIC"},
        headers=gp,
    ).json()
    zhao = login(client, "outsider_zhao")
    for path in (
        f"/api/v1/familydoctor/contracts/{contract['id']}",
        f"/api/v1/familydoctor/residents/{rid}/contracts",
        f"/api/v1/familydoctor/teams/{team_id}/worklist",
        f"/api/v1/familydoctor/teams/{team_id}",
        f"/api/v1/chronic/residents/{rid}/programs",
        f"/fhir/R4/EpisodeOfCare/{contract['id']}",
        f"/fhir/R4/CareTeam/{team_id}",
    ):
        assert client.get(path, headers=zhao).status_code == 404, path
    signed = client.post(
        "/api/v1/familydoctor/contracts",
        json={"resident_id": rid, "team_id": team_id, "package_code": "BASIC"},
        headers=zhao,
    )
    assert signed.status_code == 404
    empty = client.get(f"/fhir/R4/EpisodeOfCare?patient=Patient/{rid}", headers=zhao).json()
    assert empty["total"] == 0


def test_follow_up_api_returns_the_rule_and_refuses_bad_input(
    client: TestClient, db: Session, city: City
) -> None:
    _team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    enrolled = client.post(
        "/api/v1/chronic/enrolments",
        json={"resident_id": rid, "program": "hypertension", "enrolled_on": "2026-01-10"},
        headers=gp,
    )
    assert enrolled.status_code == 201, enrolled.text
    eid = enrolled.json()["id"]
    url = f"/api/v1/chronic/enrolments/{eid}/followups"
    future = client.post(url, json={"followed_on": "2026-06-02", "sbp": 130, "dbp": 80}, headers=gp)
    assert future.status_code == 422
    assert future.json()["rule"] == "followup_in_future"
    absurd = client.post(url, json={"followed_on": "2026-05-02", "sbp": 400, "dbp": 80}, headers=gp)
    assert absurd.status_code == 422
    assert absurd.json()["field"] == "sbp"
    assert db.scalar(select(func.count()).select_from(FollowUp)) == 0
    first = client.post(url, json={"followed_on": "2026-05-02", "sbp": 160, "dbp": 98}, headers=gp)
    assert first.json()["action"] == "adjust_revisit"
    second = client.post(url, json={"followed_on": "2026-05-15", "sbp": 158, "dbp": 96}, headers=gp)
    assert second.status_code == 201
    assert second.json()["action"] == "refer_up"
    assert "连续两次" in second.json()["clause"]
    rx = client.post(
        f"/api/v1/chronic/enrolments/{eid}/long-prescriptions",
        json={"drug_name": "氨氯地平片", "drug_class": "antihypertensive", "weeks": 13},
        headers=gp,
    )
    assert rx.status_code == 422
    assert rx.json()["rule"] == "long_rx_max_12_weeks"
    obs = client.get(f"/fhir/R4/Observation/fu-{second.json()['id']}-bp", headers=gp)
    assert obs.status_code == 200, obs.text
    validate(obs.json())
    assert obs.json()["component"][0]["valueQuantity"]["value"] == 158
    zhao = login(client, "outsider_zhao")
    assert (
        client.get(f"/fhir/R4/Observation/fu-{second.json()['id']}-bp", headers=zhao).status_code
        == 404
    )


def test_fhir_care_team_and_episode_of_care_validate(
    client: TestClient, db: Session, city: City
) -> None:
    team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    contract = client.post(
        "/api/v1/familydoctor/contracts",
        json={"resident_id": rid, "team_id": team_id, "package_code": "BASIC"},
        headers=gp,
    ).json()
    team = client.get(f"/fhir/R4/CareTeam/{team_id}", headers=gp).json()
    validate(team)
    assert len(team["participant"]) == 3
    episode = client.get(f"/fhir/R4/EpisodeOfCare/{contract['id']}", headers=gp).json()
    validate(episode)
    assert episode["period"] == {"start": "2026-06-01", "end": "2027-06-01"}
    bundle = client.get(f"/fhir/R4/EpisodeOfCare?patient=Patient/{rid}", headers=gp).json()
    validate(bundle)
    assert bundle["total"] == 1


def test_manager_sees_measures_and_settlement_of_own_group_only(
    client: TestClient, db: Session, city: City
) -> None:
    team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    client.post(
        "/api/v1/familydoctor/contracts",
        json={"resident_id": rid, "team_id": team_id, "package_code": "BASIC"},
        headers=gp,
    )
    zhou = login(client, "manager_zhou")
    m = client.get(f"/api/v1/familydoctor/groups/{city.group_id}/measures", headers=zhou)
    assert m.status_code == 200, m.text
    assert (m.json()["residents"], m.json()["contracted"]) == (1, 1)
    s = client.get(
        f"/api/v1/familydoctor/groups/{city.group_id}/settlement?year=2026", headers=zhou
    ).json()
    assert s["pool_fen"] == 12000
    assert sum(t["total_fen"] for t in s["teams"]) == 12000
    other = client.get(f"/api/v1/familydoctor/groups/{city.other_group_id}/measures", headers=zhou)
    assert other.status_code == 404
    assert (
        client.get(f"/api/v1/familydoctor/groups/{city.group_id}/measures", headers=gp).status_code
        == 403
    )


def test_deliveries_and_satisfaction_count_towards_fulfilment(
    client: TestClient, db: Session, city: City
) -> None:
    team_id, rid = _setup(db, city)
    gp = login(client, "gp_wang")
    contract = client.post(
        "/api/v1/familydoctor/contracts",
        json={"resident_id": rid, "team_id": team_id, "package_code": "ELDERLY"},
        headers=gp,
    ).json()
    base = f"/api/v1/familydoctor/contracts/{contract['id']}"
    followup = client.post(
        f"{base}/deliveries",
        json={"service_code": "chronic_followup", "delivered_on": "2026-06-01"},
        headers=gp,
    )
    assert followup.status_code == 422  # follow-ups are recorded as follow-ups
    outside = client.post(
        f"{base}/deliveries", json={"service_code": "child_check", "delivered_on": "2026-06-01"},
        headers=gp,
    )  # fmt: skip
    assert outside.status_code == 422
    assert outside.json()["rule"] == "service_in_package"
    done = client.post(
        f"{base}/deliveries", json={"service_code": "health_check", "delivered_on": "2026-06-01"},
        headers=gp,
    )  # fmt: skip
    assert done.status_code == 201, done.text
    status = {s["code"]: s for s in client.get(f"{base}/fulfilment", headers=gp).json()}
    assert status["health_check"]["delivered"] == 1
    assert status["health_check"]["next_due"] is None
    rated = client.post(f"{base}/satisfaction", json={"score": 92}, headers=gp)
    assert rated.status_code == 200
