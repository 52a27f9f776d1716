"""The indicator API: who may see what, the report's shape, Excel export and definitions."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from caregrid.record.models import Encounter
from tests.conftest import City, login
from tests.web.conftest import make_resident


def _visits(db: Session, city: City) -> None:
    resident, _ = make_resident(db, name="王五", home_institution_id=city.township_id,
                                grid_id=city.grid_id)  # fmt: skip
    for institution, day in ((city.township_id, 3), (city.township_id, 4), (city.lead_id, 5)):
        db.add(
            Encounter(
                resident_id=resident.id,
                institution_id=institution,
                group_id=city.group_id,
                encounter_class="outpatient",
                started_at=datetime(2025, 2, day, 2, tzinfo=UTC),
            )
        )
    db.commit()


def test_manager_gets_own_group_report_with_breakdown(client: TestClient, db: Session,
                                                      city: City) -> None:  # fmt: skip
    _visits(db, city)
    headers = login(client, "manager_zhou")
    response = client.get("/api/v1/indicators?period=2025&by=month", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_id"] == city.group_id and body["by"] == ["month"]
    primary = next(i for i in body["indicators"] if i["slug"] == "primary_visit_share")
    # 2 of 3 visits at the township centre
    assert (primary["numerator_value"], primary["denominator_value"]) == (2, 3)
    assert primary["value"] == "0.666667" and primary["display"] == "66.67%"
    assert primary["breakdown"] == [
        {"group_id": None, "group": None, "member_id": None, "member": None, "month": "2025-02",
         "grid_id": None, "grid": None, "numerator": 2, "denominator": 3, "value": "0.666667",
         "display": "66.67%"}
    ]  # fmt: skip
    by_grid = client.get(
        "/api/v1/indicators?period=2025&by=grid&indicator=primary_visit_share"
        "&indicator=lead_cmi", headers=headers,
    ).json()  # fmt: skip
    primary, cmi = by_grid["indicators"]
    # the resident's grid; a lead-hospital indicator has no grid breakdown (one total)
    assert [(c["grid"], c["numerator"], c["denominator"]) for c in primary["breakdown"]] == [
        ("测试网格", 2, 3)
    ]
    assert "grid" not in cmi["dimensions"] and cmi["breakdown"][0]["grid_id"] is None
    other = client.get(
        f"/api/v1/indicators?period=2025&group_id={city.other_group_id}", headers=headers
    )
    assert other.status_code == 404


def test_doctor_is_refused_and_bad_input_names_the_field(client: TestClient, city: City) -> None:
    doctor = login(client, "gp_wang")
    assert client.get("/api/v1/indicators?period=2025", headers=doctor).status_code == 403
    viewer = login(client, "viewer_wu")
    bad = client.get("/api/v1/indicators?period=2025-13", headers=viewer)
    assert bad.status_code == 422 and bad.json()["field"] == "period"
    bad_by = client.get("/api/v1/indicators?period=2025&by=ward", headers=viewer)
    assert bad_by.status_code == 422 and bad_by.json()["field"] == "by"
    unknown = client.get("/api/v1/indicators?period=2025&indicator=nope", headers=viewer)
    assert unknown.status_code == 404
    assert client.get("/api/v1/indicators?period=2025").status_code == 401


def test_excel_export_has_summary_dimension_and_definition_sheets(
    client: TestClient, db: Session, city: City
) -> None:
    _visits(db, city)
    viewer = login(client, "viewer_wu")
    response = client.get(
        "/api/v1/indicators/export?period=2025&by=group,grid,member", headers=viewer
    )
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["指标汇总", "按集团", "按网格", "按成员单位", "指标定义"]
    by_grid = [r for r in book["按网格"].iter_rows(min_row=2, values_only=True)]
    assert ("基层诊疗人次占比", "测试网格", 2, 3, 66.6667, "66.67%") in by_grid
    summary = book["指标汇总"]
    assert [c.value for c in summary[1]][:3] == ["类别", "指标", "单位"]
    rows = {r[1]: r for r in summary.iter_rows(min_row=2, values_only=True) if r and r[1]}
    assert rows["基层诊疗人次占比"][3:6] == (2, 3, 66.6667)  # percent, from 0.666667
    by_member = [r for r in book["按成员单位"].iter_rows(min_row=2, values_only=True)]
    assert ("基层中医诊疗量占比", "金雀山街道社区卫生服务中心", 0, 2, 0.0, "0.00%") in by_member
    definitions = book["指标定义"]
    assert definitions.max_row == 1 + len(client.get(
        "/api/v1/indicators/definitions", headers=viewer).json())  # fmt: skip
