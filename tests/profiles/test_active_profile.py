"""The deployment's active profile and the group's stored overrides, through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from caregrid.profiles.service import set_active_profile
from tests.conftest import City, login

KEY = "capacity.reserved_outpatient_share"


def test_a_group_overrides_a_value_and_keeps_the_clause(
    client: TestClient, city: City, db: Session
) -> None:
    set_active_profile(db, "linyi")
    db.commit()
    admin = login(client, "admin_sun")
    before = client.get("/api/v1/active-profile", headers=admin).json()
    assert before["id"] == "linyi" and before["parameters"][KEY]["value"] == 0.2
    changed = client.put(
        f"/api/v1/active-profile/overrides/{KEY}",
        json={"value": 0.25, "reason": "理事会决议提高下沉比例"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    param = client.get("/api/v1/active-profile", headers=admin).json()["parameters"][KEY]
    assert (param["value"], param["original_value"], param["overridden"]) == (0.25, 0.2, True)
    assert param["clause"] == "001 §三(三)1"
    restored = client.delete(f"/api/v1/active-profile/overrides/{KEY}", headers=admin).json()
    assert restored["parameters"][KEY]["value"] == 0.2


def test_overrides_are_validated_and_reserved_to_managers(
    client: TestClient, city: City, db: Session
) -> None:
    set_active_profile(db, "linyi")
    db.commit()
    doctor = client.put(
        f"/api/v1/active-profile/overrides/{KEY}",
        json={"value": 0.3, "reason": "想多要号"},
        headers=login(client, "gp_wang"),
    )
    assert doctor.status_code == 403
    manager = login(client, "manager_zhou")
    too_big = client.put(
        f"/api/v1/active-profile/overrides/{KEY}", json={"value": 1.5, "reason": "测试"},
        headers=manager,
    )  # fmt: skip
    assert too_big.status_code == 422 and KEY in too_big.json()["detail"]
    unknown = client.put(
        "/api/v1/active-profile/overrides/capacity.no_such_thing",
        json={"value": 1, "reason": "测试"},
        headers=manager,
    )
    assert unknown.status_code == 422
    wrong_type = client.put(
        f"/api/v1/active-profile/overrides/{KEY}", json={"value": "很多", "reason": "测试"},
        headers=manager,
    )  # fmt: skip
    assert wrong_type.status_code == 422
