"""FHIR Measure and MeasureReport: they validate against an independent FHIR library (R4B
models of fhir.resources) and carry the registry's definitions and the report's counts."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from sqlalchemy.orm import Session

from caregrid.indicators.registry import INDICATORS
from caregrid.record.models import Encounter
from tests.conftest import City, login
from tests.web.conftest import make_resident


def test_every_indicator_is_a_valid_measure(client: TestClient, city: City) -> None:
    headers = login(client, "viewer_wu")
    bundle = client.get("/fhir/R4/Measure", headers=headers)
    assert bundle.status_code == 200
    parsed = Bundle.model_validate(bundle.json())
    assert parsed.total == len(INDICATORS)
    one = client.get("/fhir/R4/Measure/primary-visit-share", headers=headers).json()
    measure = Measure.model_validate(one)
    assert measure.title == "基层诊疗人次占比"
    assert measure.scoring.coding[0].code == "proportion"
    assert client.get("/fhir/R4/Measure/nope", headers=headers).status_code == 404


def test_evaluate_measure_gives_counts_score_and_member_strata(
    client: TestClient, db: Session, city: City
) -> None:
    resident, _ = make_resident(db, name="赵六", home_institution_id=city.township_id,
                                grid_id=city.grid_id)  # fmt: skip
    for day, tcm in ((1, True), (2, False), (3, False), (4, False)):
        db.add(
            Encounter(
                resident_id=resident.id,
                institution_id=city.township_id,
                group_id=city.group_id,
                encounter_class="outpatient",
                tcm=tcm,
                started_at=datetime(2025, 7, day, 2, tzinfo=UTC),
            )
        )
    db.commit()
    headers = login(client, "manager_zhou")
    response = client.get(
        "/fhir/R4/Measure/primary-tcm-share/$evaluate-measure"
        "?periodStart=2025-07-01&periodEnd=2025-07-31",
        headers=headers,
    )
    assert response.status_code == 200, response.text
    report = MeasureReport.model_validate(response.json())
    group = report.group[0]
    counts = {p.code.coding[0].code: p.count for p in group.population}
    assert counts == {"numerator": 1, "denominator": 4}
    assert float(group.measureScore.value) == 0.25
    stratum = group.stratifier[0].stratum[0]
    assert stratum.value.text == "金雀山街道社区卫生服务中心"
    bad = client.get(
        "/fhir/R4/Measure/primary-tcm-share/$evaluate-measure"
        "?periodStart=2025-07-02&periodEnd=2025-07-31",
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["resourceType"] == "OperationOutcome"
